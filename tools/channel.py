"""The wireless channel every engine prices its uplink with: path loss, Shannon rate, airtime, energy.

One module, imported (not copied) by task offloading (`tools/offloading/scenario.py` draws its
instances' rates here), split inference (`tools/split_inference/link.py`: a link's rate from a
device's distance to the base station) and federated training (`tools/federated/fedtune`: what
each round's adapter upload costs each user).

    PL(dB)   = 128.1 + 37.6 log10(max(d, 1 m) / 1 km)                       (3GPP macro, d in m)
    rate     = B log2(1 + p 10^(-PL/10) 10^(X/10) |h|^2 / N)                 Shannon, bit/s
    airtime  = bits / rate,   energy = p * airtime

`uplink_rate_bps` is the offloading scenarios' channel (noise density -174 dBm/Hz, 8 dB
log-normal shadowing X and Rayleigh fading |h|^2 drawn per element). `Cell` is the federated
papers' set-up (papers/federated-intelligence.md, Sec. V): one base station, users placed
uniformly at random in a disc of radius 100 m, 20 MHz shared equally (FDMA) by the users that
upload in a round, 23 dBm transmit power, -80 dBm noise power over the band; by default its
rates are the mean channel (no shadowing or fading draw), so a user's cost is a function of
where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_DBM_PER_HZ = -174.0
SHADOWING_DB = 8.0


def dbm_to_w(dbm: np.ndarray | float) -> np.ndarray:
    return 10.0 ** ((np.asarray(dbm, dtype=float) - 30.0) / 10.0)


def path_loss_db(distance_m: np.ndarray | float) -> np.ndarray:
    """PL(dB) = 128.1 + 37.6 log10(max(d, 1 m) / 1000 m)."""
    d = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
    return 128.1 + 37.6 * np.log10(d / 1000.0)


def shannon_rate_bps(
    bandwidth_hz: np.ndarray | float,
    tx_power_w: np.ndarray | float,
    gain: np.ndarray | float,
    noise_w: np.ndarray | float,
) -> np.ndarray:
    """B log2(1 + p g / N): the rate of a channel with linear power gain g and noise power N."""
    snr = np.asarray(tx_power_w, dtype=float) * np.asarray(gain, dtype=float) / noise_w
    return np.asarray(bandwidth_hz, dtype=float) * np.log2(1.0 + snr)


def uplink_rate_bps(
    distance_m: np.ndarray | float,
    tx_power_w: np.ndarray | float,
    rng: np.random.Generator,
    bandwidth_hz: float = 1e6,
) -> np.ndarray:
    """Shannon rate of an uplink with path loss, 8 dB log-normal shadowing and Rayleigh fading.

    r = B log2(1 + p 10^(-PL/10) 10^(X/10) |h|^2 / (N0 B)), X ~ N(0, 8 dB), |h|^2 ~ Exp(1),
    N0 = -174 dBm/Hz. Arguments broadcast; one independent shadowing and fading draw per
    element of the broadcast shape (block fading: draw again for the next time step).
    """
    distance_m, tx_power_w = np.broadcast_arrays(
        np.asarray(distance_m, dtype=float), np.asarray(tx_power_w, dtype=float)
    )
    shape = distance_m.shape
    shadowing_db = rng.normal(0.0, SHADOWING_DB, size=shape)
    fading = rng.exponential(1.0, size=shape)  # |h|^2 of a Rayleigh channel
    gain = 10.0 ** (-(path_loss_db(distance_m) - shadowing_db) / 10.0) * fading
    noise_w = dbm_to_w(NOISE_DBM_PER_HZ) * bandwidth_hz
    return shannon_rate_bps(bandwidth_hz, tx_power_w, gain, noise_w)


@dataclass(frozen=True)
class Cell:
    """One base station and its users (the federated papers' wireless set-up)."""

    radius_m: float = 100.0
    bandwidth_hz: float = 20e6
    tx_power_dbm: float = 23.0
    noise_dbm: float = -80.0

    @property
    def tx_power_w(self) -> float:
        return float(dbm_to_w(self.tx_power_dbm))

    def place_users(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Distances (m) of n users placed uniformly at random in the disc (at least 1 m away)."""
        return np.maximum(self.radius_m * np.sqrt(rng.uniform(0.0, 1.0, size=n)), 1.0)

    def rate_bps(self, distance_m: np.ndarray | float, sharing: int = 1) -> np.ndarray:
        """Mean Shannon rate (bit/s) at that distance with the band split among `sharing` users."""
        if sharing < 1:
            raise ValueError("sharing must be at least 1 user")
        band = self.bandwidth_hz / sharing
        gain = 10.0 ** (-path_loss_db(distance_m) / 10.0)
        noise = dbm_to_w(self.noise_dbm) / sharing  # the noise power of the user's share
        return shannon_rate_bps(band, self.tx_power_w, gain, noise)

    def upload(
        self, n_bytes: float, distance_m: np.ndarray | float, sharing: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, joules) to send n_bytes from that distance: airtime and p x airtime."""
        seconds = 8.0 * float(n_bytes) / self.rate_bps(distance_m, sharing)
        return seconds, self.tx_power_w * seconds
