"""The audit hook every Python process in the sandbox installs at start-up: `run_sandboxed` copies
this file as `sitecustomize.py` into a directory it puts first on PYTHONPATH, so the child and
every Python process it starts (Ray's workers included) refuse socket events that would leave the
machine. Loopback (127.0.0.0/8, ::1, localhost, the host's own name), this host's own interface
addresses (the kernel delivers those through loopback; without a namespace Ray binds its services
to the address it finds for the host, e.g. 192.0.2.2), the wildcard addresses and non-IP families
(AF_UNIX, AF_NETLINK) pass. A refused event appends one JSON line to the marker
file named by EDGEAI_SANDBOX_MARKER (address, event, pid, argv), prints one line on stderr and
ends the process with os._exit(REFUSED_EXIT): raising instead could be caught by the program and
the parent would never learn of it. The one exception is QUIET_HOSTS, the cloud metadata services:
Ray 2.55's dashboard process (which Ray starts even with include_dashboard=False, loading only its
UsageStatsHead module) asks them which cloud it runs on whatever RAY_USAGE_STATS_ENABLED says, and
takes an error as "unknown"; there the hook raises the ENETUNREACH a network namespace would give
and writes the line with "quiet": true, so the attempt is blocked and recorded but Ray lives on.
Standard library only; stays silent outside a sandbox."""

import errno
import json
import os
import socket
import sys

REFUSED_EXIT = 113  # EHOSTUNREACH: the parent recognises it even when the marker was not written
_MARKER = os.environ.get("EDGEAI_SANDBOX_MARKER", "")
_LOCAL_NAMES = {"", "localhost", "ip6-localhost", "ip6-loopback", "0.0.0.0", "::"}
try:
    _LOCAL_NAMES.add(socket.gethostname().lower())  # resolved from /etc/hosts, not the network
except OSError:
    pass
QUIET_HOSTS = {"169.254.169.254", "metadata.google.internal", "fd00:ec2::254"}
_CHECKED_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_LOCAL_FAMILIES = tuple(
    getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK") if hasattr(socket, name)
)


_own: set[bytes] | None = None


def _own_addresses() -> set[bytes]:
    """This host's interface addresses (packed), from /proc/net/fib_trie and /proc/net/if_inet6;
    read once, on the first check that needs them."""
    global _own
    if _own is None:
        found: set[bytes] = set()
        try:
            with open("/proc/net/fib_trie") as f:
                previous = ""
                for line in f:
                    if line.strip() == "/32 host LOCAL" and previous.startswith("|-- "):
                        found.add(socket.inet_aton(previous[4:]))
                    previous = line.strip()
        except OSError:
            pass
        try:
            with open("/proc/net/if_inet6") as f:
                found.update(bytes.fromhex(line.split()[0]) for line in f if line.strip())
        except (OSError, ValueError):
            pass
        _own = found
    return _own


def _packed(host: str) -> bytes | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
    return None


def _is_local_host(host: object) -> bool:
    """True for a loopback or wildcard literal, localhost, or this machine's own name."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    host = host.split("%", 1)[0]  # fe80::1%lo -> fe80::1
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    host = host.removeprefix("::ffff:")  # IPv4-mapped IPv6
    packed = _packed(host)
    if packed is None:
        return False  # a name other than ours: resolving it may ask a DNS server
    if len(packed) == 4 and packed[0] == 127:
        return True
    return packed == socket.inet_pton(socket.AF_INET6, "::1") or packed in _own_addresses()


def _describe(host: object, port: object) -> str:
    host = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _refuse(event: str, host: object, where: str) -> None:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    quiet = isinstance(host, str) and host.strip("[]").lower() in QUIET_HOSTS
    record = {
        "event": event,
        "address": where,
        "quiet": quiet,
        "pid": os.getpid(),
        "argv": [str(a) for a in getattr(sys, "orig_argv", sys.argv)][:6],
    }
    line = json.dumps(record) + "\n"
    if _MARKER:
        try:
            fd = os.open(_MARKER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # the exit status still tells the parent
    if quiet:
        raise OSError(errno.ENETUNREACH, f"Network is unreachable (edgeai sandbox: {where})")
    try:
        os.write(2, f"edgeai sandbox: refused a network connection to {where} ({event})\n".encode())
    except OSError:
        pass
    os._exit(REFUSED_EXIT)


def _sockaddr_verdict(sock: object, address: object) -> tuple[object, str | None]:
    """(host, None) when `address` stays on this machine, else (host, "host:port")."""
    family = getattr(sock, "family", None)
    if family in _LOCAL_FAMILIES or address is None:
        return None, None
    if family in _CHECKED_FAMILIES and isinstance(address, tuple) and address:
        host = address[0]
        return host, None if _is_local_host(host) else _describe(host, address[1])
    return None, f"{address!r} (family {family})"  # raw packets, bluetooth, ...: never needed


_EVENTS = {
    "socket.connect",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
}


def _audit(event: str, args: tuple) -> None:
    if event not in _EVENTS:
        return
    host = args[0]
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        host, where = _sockaddr_verdict(args[0], args[1])
    elif event == "socket.getaddrinfo":
        where = None if _is_local_host(host) else _describe(host, args[1])
    elif event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        where = None if _is_local_host(host) else str(host)
    else:  # socket.getnameinfo
        addr = args[0]
        host = addr[0] if isinstance(addr, tuple) and addr else addr
        ok = isinstance(addr, tuple) and addr and _is_local_host(addr[0])
        where = (
            None if ok else _describe(addr[0], addr[1]) if isinstance(addr, tuple) else str(addr)
        )
    if where is not None:
        _refuse(event, host, where)


if _MARKER:
    sys.addaudithook(_audit)
