"""Helpers for the operations tests: parse a Prometheus exposition into {(name, labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def parse_metrics(text: str) -> tuple[dict[str, str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """(family name -> type, (sample name, sorted labels) -> value) of a text exposition."""
    types: dict[str, str] = {}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def sample(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0.0 if the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
