"""The users' text, offline: four clearly different domains, each user's share on its own device.

Sources (`corpus`):

    fortunes   Debian's categorised fortune-cookie databases (`apt-get install fortunes`,
               /usr/share/games/fortunes): four domains of two categories each,
               computers+linux, songs-poems+literature, politics+law, science+education
    generated  a tested template generator (always there; the tests' corpus): weather reports,
               recipes, match reports and shell sessions, two sub-styles each

`auto` takes the fortunes when installed, else the generator. Users are partitioned with
flwr-datasets' PathologicalPartitioner (one domain per user, deterministic: user u holds domain
u mod 4), so clusters of users share a domain (non-IID); each user's texts are split into its
own training and held-out parts. Two tasks on the same texts (Fig. 5 / Fig. 6 of
papers/federated-intelligence.md):

    generation      next-token loss on the user's texts (perplexity = exp(loss))
    classification  "<text>\\nTopic:" followed by the category's label word; loss and accuracy
                    on the label word only (argmax over the eight label words)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from edgeai.errors import UserInputError

FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_DOMAINS: tuple[tuple[str, str], ...] = (
    ("computers", "linux"), ("songs-poems", "literature"), ("politics", "law"),
    ("science", "education"),
)  # fmt: skip
GENERATED_DOMAINS: tuple[tuple[str, str], ...] = (
    ("weather", "forecast"), ("recipe", "baking"), ("football", "tennis"), ("shell", "git"),
)  # fmt: skip
LABEL_WORDS: dict[str, str] = {
    "computers": "computer", "linux": "linux", "songs-poems": "poem", "literature": "book",
    "politics": "politics", "law": "law", "science": "science", "education": "school",
    "weather": "weather", "forecast": "forecast", "recipe": "recipe", "baking": "baking",
    "football": "football", "tennis": "tennis", "shell": "shell", "git": "git",
}  # fmt: skip
CORPORA = ("auto", "fortunes", "generated")
TASKS = ("generation", "classification")
MAX_CHARS = 320  # a fortune longer than this is cut (the token budget is MAX_TOKENS anyway)


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    domain: int


def read_fortunes(category: str, root: Path = FORTUNES) -> list[str]:
    raw = (root / category).read_text(encoding="utf-8", errors="replace")
    out = []
    for entry in raw.split("\n%\n"):
        text = " ".join(entry.replace("%", " ").split())
        if 20 <= len(text):
            out.append(text[:MAX_CHARS])
    return out


def fortunes_installed(root: Path = FORTUNES) -> bool:
    return all((root / c).is_file() for pair in FORTUNE_DOMAINS for c in pair)


_CITIES = ["Lyon", "Oslo", "Kyoto", "Lima", "Cairo", "Perth", "Quebec", "Tartu", "Accra", "Porto"]
_SKY = ["clear skies", "scattered showers", "heavy rain", "light snow", "thick fog", "sunshine",
        "thunderstorms", "a strong breeze", "drizzle", "hail"]
_FOOD = ["onions", "garlic", "lentils", "carrots", "chickpeas", "rice", "spinach", "tomatoes",
         "mushrooms", "peppers"]
_BAKE = ["flour", "butter", "sugar", "yeast", "eggs", "honey", "oats", "cocoa", "almonds", "milk"]
_TEAMS = ["Rovers", "United", "Athletic", "Wanderers", "City", "Albion", "Rangers", "Town"]
_PLAYERS = ["Silva", "Novak", "Osaka", "Keys", "Ruud", "Sinner", "Swiatek", "Alcaraz"]
_FILES = ["notes.txt", "main.py", "data.csv", "build.log", "setup.cfg", "README.md", "app.js"]
_BRANCHES = ["main", "dev", "fix-login", "feature-map", "release", "docs"]


def _generated(category: str, rng: random.Random) -> str:
    c, s, n = rng.choice(_CITIES), rng.choice(_SKY), rng.randint(-5, 35)
    if category == "weather":
        return (f"Today in {c}: {s} with a high of {n} degrees. Winds from the "
                f"{rng.choice(['north', 'south', 'east', 'west'])} at {rng.randint(5, 60)} km/h.")
    if category == "forecast":
        return (f"Tomorrow {c} can expect {s}, turning to {rng.choice(_SKY)} by the evening; "
                f"lows near {n - 8} degrees and a {rng.randint(10, 90)} percent chance of rain.")
    if category == "recipe":
        a, b = rng.sample(_FOOD, 2)
        return (f"Chop the {a} and fry them in olive oil for {rng.randint(2, 12)} minutes, add the "
                f"{b} and simmer until soft. Season with salt and serve hot.")
    if category == "baking":
        a, b = rng.sample(_BAKE, 2)
        return (f"Mix {rng.randint(100, 500)} g of {a} with the {b}, knead the dough and bake at "
                f"{rng.choice([160, 180, 200, 220])} degrees for {rng.randint(15, 50)} minutes.")
    if category == "football":
        a, b = rng.sample(_TEAMS, 2)
        return (f"{a} beat {b} {rng.randint(1, 5)}-{rng.randint(0, 1)} after a goal in the "
                f"{rng.randint(2, 90)}th minute; the home crowd sang until the final whistle.")
    if category == "tennis":
        a, b = rng.sample(_PLAYERS, 2)
        return (f"{a} defeated {b} 6-{rng.randint(0, 4)}, 7-{rng.randint(5, 6)} with "
                f"{rng.randint(3, 20)} aces and broke serve in the opening game.")
    if category == "shell":
        f = rng.choice(_FILES)
        return (f"$ ls -l {f}\n$ grep -n error {f} | head -{rng.randint(2, 20)}\n"
                f"$ wc -l {f}\n{rng.randint(10, 900)} {f}")
    if category == "git":
        return (f"$ git checkout -b {rng.choice(_BRANCHES)}\n$ git add {rng.choice(_FILES)}\n"
                f"$ git commit -m \"fix {rng.choice(['typo', 'crash', 'test', 'docs'])}\"\n"
                f"$ git push origin {rng.choice(_BRANCHES)}")
    raise ValueError(category)


def generated_texts(category: str, n: int, seed: int = 0) -> list[str]:
    rng = random.Random(f"{category}:{seed}")
    return [_generated(category, rng) for _ in range(n)]


def corpus_examples(corpus: str, per_category: int, seed: int = 0) -> list[Example]:
    """Up to `per_category` texts of each of the 8 categories, tagged with their domain (0..3)."""
    if corpus not in CORPORA:
        raise UserInputError(f"unknown corpus '{corpus}' (choose from {', '.join(CORPORA)})")
    if corpus == "auto":
        corpus = "fortunes" if fortunes_installed() else "generated"
    if corpus == "fortunes" and not fortunes_installed():
        raise UserInputError(f"corpus fortunes: not installed under {FORTUNES} "
                             "(apt-get install fortunes), or use --corpus generated")
    domains = FORTUNE_DOMAINS if corpus == "fortunes" else GENERATED_DOMAINS
    rng = random.Random(seed)
    out: list[Example] = []
    for d, pair in enumerate(domains):
        for category in pair:
            texts = (read_fortunes(category) if corpus == "fortunes"
                     else generated_texts(category, per_category, seed))
            rng.shuffle(texts)
            out += [Example(t, category, d) for t in texts[:per_category]]
    return out


def partition_users(
    examples: list[Example], users: int, per_user: int, held_out: int, seed: int = 0
) -> list[dict]:
    """One dict per user: {"user", "domain", "train": [...], "test": [...]} (examples as dicts).

    flwr-datasets' PathologicalPartitioner with one domain per partition (deterministic: user u
    gets domain u mod 4); each user keeps `per_user` texts for training and `held_out` apart."""
    from datasets import Dataset
    from flwr_datasets.partitioner import PathologicalPartitioner

    n_domains = len({e.domain for e in examples})
    if users < n_domains:
        raise UserInputError(f"--users {users}: at least {n_domains} users (one per domain)")
    ds = Dataset.from_dict({
        "text": [e.text for e in examples],
        "category": [e.category for e in examples],
        "domain": [e.domain for e in examples],
    })
    part = PathologicalPartitioner(num_partitions=users, partition_by="domain",
                                   num_classes_per_partition=1,
                                   class_assignment_mode="deterministic", shuffle=True, seed=seed)
    part.dataset = ds
    out = []
    for u in range(users):
        rows = part.load_partition(u).to_list()
        if len(rows) < 2:
            raise UserInputError(f"user {u}: only {len(rows)} texts; use fewer --users")
        test_n = min(held_out, max(1, len(rows) // 4))
        out.append({"user": u, "domain": int(rows[0]["domain"]),
                    "test": rows[:test_n], "train": rows[test_n : test_n + per_user]})
    return out


def write_user_files(users: list[dict], folder: Path) -> list[Path]:
    """Each user's texts in its own file (the user's device storage in the simulation)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for u in users:
        path = folder / f"user_{u['user']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(u), encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths


def label_words(corpus_domains: tuple[tuple[str, str], ...]) -> list[str]:
    return [LABEL_WORDS[c] for pair in corpus_domains for c in pair]
