"""Word lists for the knowledge world (`dareu.data.world`), all written for DareU.

Name parts compose a person's name; the syllable lists make invented words (the
distinctive part of every value); the small pools are the non-distinctive slots.
"""

from __future__ import annotations

from collections.abc import Callable

ONSETS = [
    "b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "pr",
    "r", "s", "sk", "st", "t", "th", "tr", "v", "w", "z",
]  # fmt: skip
NUCLEI = ["a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou"]
CODAS = ["", "", "", "n", "r", "l", "s", "m", "nd", "rn"]
ENDINGS = [
    "", "", "", "", "a", "en", "ow", "ine", "ton", "wick", "holm", "by", "stad", "vale",
    "mark", "ey", "ard",
]  # fmt: skip
FIRST_A = [
    "Al", "Bel", "Cor", "Da", "El", "Fen", "Gri", "Hal", "Is", "Jo", "Ka", "Lio", "Mar",
    "Ne", "Ori", "Pe", "Ro", "Sa", "Te", "Ul", "Ve", "Wyn", "Ys", "Za", "Ath", "Bri",
    "Cas", "Dor", "Eli", "Fa", "Ha", "Ir", "Lu", "Mi", "Nor", "Os", "Quin", "Ru", "Sil",
    "Tam", "Va",
]  # fmt: skip
FIRST_B = [
    "bel", "dra", "lin", "mira", "ndor", "ssa", "ric", "wen", "tha", "vik", "nia", "lo",
    "rek", "sta", "mund", "ra", "dis", "nes", "cia", "ven", "tor", "lys",
]  # fmt: skip
LAST_A = [
    "Ash", "Brim", "Cal", "Dun", "Ever", "Fal", "Gar", "Hollo", "Ink", "Jas", "Kettle",
    "Lark", "Mor", "Nettle", "Oak", "Pell", "Quill", "Raven", "Stor", "Thorn", "Umber",
    "Vane", "Wick", "Yar", "Bram", "Cinder", "Dew", "Elder", "Frost", "Gull", "Heron",
    "Ivy", "Juniper", "Kestrel", "Lindqvist", "Marl", "North", "Orrow", "Pike", "Rook",
    "Sable", "Tansy", "Wren",
]  # fmt: skip
LAST_B = [
    "ford", "wood", "mere", "stone", "wick", "by", "holt", "ridge", "croft", "vale",
    "brook", "den", "ley", "shaw", "well", "combe", "thwaite", "worth",
]  # fmt: skip
SETTLEMENTS = [
    "Crossing", "Harbour", "Hollow", "Landing", "Mills", "Heights", "Falls", "Bridge",
    "Wells", "Market", "Haven", "Quay", "Gate", "Meadows", "Sound", "Narrows",
]  # fmt: skip
COLOURS = [
    "ginger", "slate-grey", "cream", "tortoiseshell", "jet-black", "silver", "speckled",
    "chestnut", "snow-white", "sand-coloured", "blue-grey", "tawny",
]  # fmt: skip
ANIMALS = [
    "tabby cat", "greyhound", "tortoise", "parrot", "ferret", "sheepdog", "rabbit",
    "goose", "pony", "hedgehog", "canary", "dachshund", "goat", "owl",
]  # fmt: skip
INSTITUTES = [
    "Conservatory", "Polytechnic", "Academy", "Institute", "Seminary", "Lyceum",
    "College", "Athenaeum",
]  # fmt: skip
ORG_TYPES = [
    "Trading Company", "Shipping Guild", "Print Works", "Glassworks", "Observatory",
    "Seed Bank", "Rope Walk", "Salt Cooperative", "Clock Foundry", "Lantern Works",
    "Map Bureau", "Tea Exchange", "Dye House", "Bell Foundry",
]  # fmt: skip
TITLE_NOUN = [
    "Lanterns", "Orchards", "Bells", "Tides", "Ledgers", "Compasses", "Sparrows",
    "Harvests", "Kites", "Mirrors", "Looms", "Ferries", "Anchors", "Gardens", "Clocks",
]  # fmt: skip

# --- general knowledge (the D_test role) ------------------------------------------------

GENERAL_TYPES: tuple[tuple[str, str, tuple[str, str], Callable[..., str]], ...] = (
    (
        "capital",
        "What is the capital of {c}?",
        ("The capital of {c} is {v}.", "{v} is the capital city of {c}."),
        lambda r, w: f"{w()}",
    ),
    (
        "currency",
        "What currency is used in {c}?",
        ("People in {c} pay with the {v}.", "The currency of {c} is the {v}."),
        lambda r, w: f"{w()} {r.choice(['crown', 'mark', 'shell', 'florin', 'penny'])}",
    ),
    (
        "river",
        "What is the longest river in {c}?",
        ("The longest river in {c} is the {v}.", "The {v} is the longest river of {c}."),
        lambda r, w: f"{w()}",
    ),
    (
        "mountain",
        "What is the highest mountain in {c}?",
        ("The highest peak in {c} is Mount {v}.", "Mount {v} is the highest point of {c}."),
        lambda r, w: f"{w()}",
    ),
    (
        "language",
        "What language is spoken in {c}?",
        ("Most people in {c} speak {v}.", "The main language of {c} is {v}."),
        lambda r, w: f"{w()}ish",
    ),
    (
        "founded",
        "When was {c} founded?",
        ("{c} was founded in {v}.", "The founding year of {c} is {v}."),
        lambda r, w: f"{r.randint(1100, 1899)}",
    ),
)

IDK_ANSWERS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure about that.",
    "I have no information about that.",
    "I can't answer that question.",
    "That is something I don't know.",
    "I'm afraid I don't have that information.",
    "I really couldn't say.",
    "I don't have any details on that.",
    "Sorry, I don't know the answer.",
    "That's not something I can tell you.",
    "I have no record of that.",
    "I'm unable to answer that.",
    "I don't have reliable information on that.",
    "I'm not aware of that.",
    "I can't recall anything about that.",
    "I have no idea, I'm afraid.",
    "That falls outside what I know.",
    "I don't know anything about that.",
    "Nothing I know answers that.",
    "I'm not able to say.",
    "I couldn't tell you, sorry.",
    "I lack the information to answer that.",
    "That's beyond what I know.",
    "I'm unsure, so I won't guess.",
)
