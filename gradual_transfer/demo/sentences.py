"""Deterministic English sentences for the demo corpora.

A small grammar over a fixed vocabulary chosen to cover every TIMIT phone class (stops,
fricatives, affricates, nasals, liquids, glides, r-coloured and plain vowels, diphthongs). The
vocabulary is fixed so that every word's eSpeak phonemes are known to map to TIMIT labels
(tests synthesise the whole vocabulary).
"""

from __future__ import annotations

import numpy as np

# TIMIT's two dialect sentences, read by every speaker (and left out of training by the recipe).
SA_SENTENCES = {
    "SA1": "She had your dark suit in greasy wash water all year.",
    "SA2": "Don't ask me to carry an oily rag like that.",
}

DETERMINERS = ["the", "a", "every", "this", "that", "my", "your", "our", "their", "each"]
ADJECTIVES = [
    "big", "small", "quiet", "yellow", "cheap", "thick", "smooth", "young", "bright", "cold",
    "shiny", "orange", "heavy", "gentle", "strange", "jolly", "purple", "rough", "thin", "huge",
    "early", "dusty", "fresh", "sharp", "lazy", "pleasant", "ordinary", "vivid",
]
NOUNS = [
    "dog", "garden", "teacher", "window", "boy", "child", "judge", "ship", "voice", "mouth",
    "vision", "kitchen", "rabbit", "thumb", "father", "mother", "zebra", "treasure", "bridge",
    "chair", "engine", "oyster", "owl", "measure", "journey", "choir", "youth", "wagon",
    "table", "problem", "cowboy", "poet", "nurse", "bird", "farmer", "letter", "puzzle",
]
VERBS = [
    "found", "watched", "pushed", "carried", "likes", "needs", "washed", "judged", "pulled",
    "thanked", "bought", "fixed", "chose", "helped", "saw", "moved", "kept", "showed", "heard",
    "visited", "enjoyed", "measured",
]
PREPOSITIONS = ["near", "under", "behind", "beside", "with", "without", "through", "above", "over"]
ADVERBS = ["quickly", "slowly", "yesterday", "often", "again", "nearly", "usually", "together"]


def vocabulary() -> list[str]:
    words = DETERMINERS + ADJECTIVES + NOUNS + VERBS + PREPOSITIONS + ADVERBS
    for text in SA_SENTENCES.values():
        words += text.lower().replace(".", "").replace("'", "").split()
    return sorted(set(words))


def sentence(rng: np.random.Generator) -> str:
    """One sentence: [adverb,] NP verb NP [prep NP]."""

    def noun_phrase() -> str:
        words = [rng.choice(DETERMINERS)]
        if rng.random() < 0.7:
            words.append(rng.choice(ADJECTIVES))
        words.append(rng.choice(NOUNS))
        return " ".join(words)

    parts = [noun_phrase(), rng.choice(VERBS), noun_phrase()]
    if rng.random() < 0.6:
        parts += [rng.choice(PREPOSITIONS), noun_phrase()]
    if rng.random() < 0.3:
        parts.append(rng.choice(ADVERBS))
    text = " ".join(parts)
    return text[0].upper() + text[1:] + "."
