"""The results vocabulary (`priorlab/vocab.py`): its builders and parsers agree, and no other
module of the package spells a status tuple, a StyleGAN key pattern, a run-column list or the
database file name (read from the source: string literals outside docstrings)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from priorlab import vocab

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (ROOT / "priorlab").rglob("*.py") if p.name != "vocab.py")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def literals(path: Path):
    """(line, node) of every string-holding node: constants (docstrings left out), f-strings."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, node


def text_of(node: ast.AST) -> str:
    """A literal's text; an f-string's placeholders become `{}`."""
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def collections(path: Path):
    """(line, [str, ...]) of every tuple, list or set literal whose items are all strings, and of
    every dict literal's string keys."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        items = (node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set))
                 else node.keys if isinstance(node, ast.Dict) else None)
        if items and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items):
            yield node.lineno, [e.value for e in items]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_no_status_tuple_outside_the_vocabulary():
    bad = [f"{where(p, line)} {items}" for p in SOURCES for line, items in collections(p)
           if len(items) >= 2 and all(s in vocab.STATUSES for s in items)]
    assert bad == [], "spell status classes through priorlab.vocab:\n" + "\n".join(bad)


def test_no_run_column_list_outside_the_vocabulary():
    # The runs() frame's leading columns (with `sweep`, which the frame joins in); a few picked for
    # display, or the SQL table's own fields (params and summary as JSON, no sweep), are not copies.
    bad = [f"{where(p, line)} {items}" for p in SOURCES for line, items in collections(p)
           if "sweep" in items and len(set(items) & set(vocab.RUN_COLUMNS)) >= 6]
    assert bad == [], "use priorlab.vocab.RUN_COLUMNS:\n" + "\n".join(bad)


def test_the_database_name_is_spelled_once():
    bad = [where(p, line) for p in SOURCES for line, node in literals(p) if vocab.DB_NAME in text_of(node)]
    assert bad == [], "use priorlab.vocab.DB_NAME:\n" + "\n".join(bad)


# A StyleGAN summary key, metric or artifact name (or a regex for one) written by hand.
_SPACES = "|".join(map(re.escape, (*vocab.INTERP_SPACES, *vocab.LATENT_SPACES)))
STYLEGAN_PATTERNS = [
    re.compile(r"flip_step_pair|flips_before|_flip_rate|/pair(\d|\{|\()|pair\(\\d|/latent(\d|\{|\\d|\()|latent\\d"),
    re.compile(r"^(strip|grid|samples)/|\^(strip|grid|samples)/"),
    re.compile(rf"^({'|'.join(vocab.FRAME_MEASURES)}|alpha|normal|diversity)/(\{{\}}|{_SPACES}|\(|\[)"),
    re.compile(r"^\{\}_(" + "|".join(vocab.TRAVERSE_KEYS + vocab.INTERP_KEYS + vocab.DIRECTION_KEYS
                                     + vocab.SAMPLE_KEYS) + r")$"),
    re.compile(rf"^({_SPACES})_(" + "|".join(vocab.TRAVERSE_KEYS + vocab.INTERP_KEYS + vocab.DIRECTION_KEYS
                                           + vocab.SAMPLE_KEYS) + r")$"),
]


def test_no_stylegan_key_pattern_outside_the_vocabulary():
    bad = [f"{where(p, line)} {text_of(node)!r}" for p in SOURCES for line, node in literals(p)
           if any(rx.search(text_of(node)) for rx in STYLEGAN_PATTERNS)]
    assert bad == [], "build and parse StyleGAN names with priorlab.vocab:\n" + "\n".join(bad)


def test_run_id_is_stable_and_the_same_everywhere():
    from priorlab.cluster import expand

    params = {"arch": "skip", "depth": 2, "sigma": 0.1, "seed": 0}
    assert vocab.run_id("dip", params) == vocab.run_id("dip", dict(reversed(list(params.items()))))
    assert vocab.run_id("dip", params) != vocab.run_id("dip-baseline", params)
    assert expand.run_id("dip", params) == vocab.run_id("dip", params)  # the sweep's ids are the vocabulary's
    # Pinned: a change here would make every stored run look new to a resumed sweep.
    assert vocab.run_id("dip", params) == "6b36832742b991a5"


@pytest.mark.parametrize("field", vocab.STOP_FIELDS)
def test_stop_keys_round_trip(field):
    assert vocab.parse_stop_key(vocab.stop_key(field, "wmv")) == (field, "wmv")
    assert vocab.parse_stop_key(vocab.stop_key(field, "my_det")) == (field, "my_det")


def test_builders_and_parsers_agree():
    assert vocab.parse_stop_key("best_psnr") is None
    with pytest.raises(ValueError, match="field: 'oops'"):
        vocab.stop_key("oops", "wmv")
    assert vocab.parse_detector_metric(vocab.detector_metric("dp")) == "dp"
    assert vocab.parse_detector_metric("psnr") is None
    for space in vocab.INTERP_SPACES:
        assert vocab.parse_flip_step_key(vocab.flip_step_key(space, 12)) == (space, 12)
        assert vocab.parse_space_key(vocab.space_key(space, "flip_rate")) == (space, "flip_rate")
        name = vocab.frame_metric("label", space, vocab.pair(3))
        assert vocab.parse_frame_metric(name) == ("label", space, "pair3")
        assert vocab.parse_artifact(vocab.strip_artifact(space, vocab.pair(0))) == ("strip", space, "pair0")
    for space in vocab.LATENT_SPACES:
        assert vocab.parse_space_metric(vocab.space_metric("prob", space)) == ("prob", space)
        assert vocab.parse_frame_metric(vocab.frame_metric("ssim", space, vocab.MEAN)) == ("ssim", space, "mean")
        assert vocab.parse_artifact(vocab.grid_artifact(space)) == ("grid", space, None)
        assert vocab.parse_artifact(vocab.samples_artifact(space)) == ("samples", space, None)
    assert vocab.parse_who(vocab.latent(4)) == ("latent", 4)
    assert vocab.parse_who(vocab.MEAN) is None
    assert vocab.parse_artifact(vocab.OUTPUT) == ("output", None, None)
    assert vocab.parse_frame_metric("prob/z") is None and vocab.parse_space_metric("prob/z/mean") is None


def test_headline_artifacts_per_kind():
    assert vocab.headline_artifact(vocab.SG_SAMPLE, vocab.grid_artifact())
    assert vocab.headline_artifact(vocab.SG_INTERPOLATE, vocab.strip_artifact("w_lerp", vocab.pair(0)))
    assert not vocab.headline_artifact(vocab.SG_INTERPOLATE, vocab.strip_artifact("w_lerp", vocab.pair(1)))
    assert vocab.headline_artifact(vocab.SG_DIRECTION, vocab.EXTREMES)
    assert vocab.headline_artifact(vocab.SG_TRAVERSE, vocab.grid_artifact("z"))
    assert not vocab.headline_artifact(vocab.SG_TRAVERSE, vocab.strip_artifact("z", vocab.latent(0)))
    assert not vocab.headline_artifact(vocab.DIP, vocab.OUTPUT)


def test_status_classes_partition_as_documented():
    assert set(vocab.WAITING) | set(vocab.ENDED) == set(vocab.STATUSES)
    assert not set(vocab.WAITING) & set(vocab.ENDED)
    assert set(vocab.RESULTS) | set(vocab.RERUN) == set(vocab.STATUSES)
    assert set(vocab.COMPLETED) <= set(vocab.SPENT) <= set(vocab.FINAL) <= set(vocab.ENDED)
    assert vocab.PRUNED not in vocab.FAILED and vocab.DONE not in vocab.FAILED
