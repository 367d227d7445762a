"""Bounded reading of every input file (issue 14, "crashes" and "cosmetic"): regular files only,
of bounded size and nesting, each other kind of path its own one-line message, and user text
echoed with its control and bidi characters escaped."""

from __future__ import annotations

import os

import pytest

from nplsim.experiments.cli import main
from nplsim.market.errors import (
    MAX_INPUT_BYTES,
    MAX_NESTING,
    ConfigError,
    printable,
    read_json,
    read_toml,
)


def _deep(kind: str, levels: int) -> str:
    if kind == "toml":
        return "a = " + "[" * levels + "]" * levels + "\n"
    return "[" * levels + "]" * levels


@pytest.fixture
def odd_paths(tmp_path):
    """A FIFO, a directory, a dangling symbolic link and a loop of them."""
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "dangling.toml").symlink_to(tmp_path / "nowhere.toml")
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fifo.toml", "is a named pipe (FIFO), not a regular file"),
        ("folder.toml", "is a directory, not a regular file"),
        ("dangling.toml", "a symbolic link to a file that does not exist"),
        ("loop.toml", "cannot read: Too many levels of symbolic links"),
        ("missing.toml", "file not found"),
    ],
)
def test_each_kind_of_unreadable_path_has_its_own_message(odd_paths, name, expected):
    # was: "file not found" for a FIFO, a directory and /dev/zero
    with pytest.raises(ConfigError) as error:
        read_toml(odd_paths / name)
    assert error.value.problem == expected


def test_a_device_is_not_read():
    with pytest.raises(ConfigError, match="is a character device, not a regular file"):
        read_toml("/dev/zero")


def test_a_file_above_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.toml"
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ConfigError, match="above the"):
        read_toml(path)


@pytest.mark.parametrize("kind", ["toml", "json"])
@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 3000, 100_000])
def test_deep_nesting_is_one_error_not_a_recursion_error(tmp_path, kind, levels):
    # was: RecursionError with 3,000 lines of traceback, in every file input
    path = tmp_path / f"deep.{kind}"
    path.write_text(_deep(kind, levels) if kind == "toml" else '{"a": ' + _deep(kind, levels) + "}")
    with pytest.raises(ConfigError, match="nested more than"):
        (read_toml if kind == "toml" else read_json)(path)


def test_nesting_up_to_the_limit_is_read(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(_deep("toml", MAX_NESTING - 1))
    assert read_toml(path)["a"] is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"a": NaN}', "not strict JSON"), ("[1]", "expected a JSON object, got array")],
)
def test_json_input_is_strict_and_an_object(tmp_path, text, expected):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        read_json(path)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{path}"],
        ["sweep", "{path}", "--out", "{out}"],
        ["sensitivity", "{path}"],
        ["validate", "--facts", "{path}"],
        ["run", "--from-manifest", "{path}"],
    ],
    ids=["scenario", "sweep spec", "sensitivity spec", "facts", "manifest"],
)
@pytest.mark.parametrize("target", ["fifo", "deep", "/dev/zero", "folder"])
def test_every_file_input_is_bounded_from_the_command_line(tmp_path, capsys, argv, target):
    # was: a hang on a FIFO, RecursionError on deep nesting, "file not found" for the others
    suffix = ".json" if "--from-manifest" in argv else ".toml"
    path = tmp_path / f"input{suffix}"
    if target == "fifo":
        os.mkfifo(path)
    elif target == "deep":
        path.write_text(_deep("toml", 3000) if suffix == ".toml" else _deep("json", 3000))
    elif target == "folder":
        path.mkdir()
    else:
        path = target
    out = tmp_path / "out"
    argv = [a.format(path=path, out=out) for a in argv] + ["--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err, err
    assert not out.exists()


def test_printable_escapes_control_and_bidi_characters():
    assert printable("a\nb\r\tc") == "a\\nb\\r\\tc"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable("abc\u202edef\u2066") == "abc\\u202edef\\u2066"
    assert printable("ü 🦜 Ω") == "ü 🦜 Ω"


@pytest.mark.parametrize(
    "key", ["\x1b[2J\x1b[31mcar_min", "car\u202emin", "car\u2028min", "a\x00b"]
)
def test_an_escape_or_bidi_character_in_a_key_is_escaped_in_the_message(tmp_path, capsys, key):
    # was: echoed raw to the terminal
    assert main(["run", "--set", f"{key}=1", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.isprintable() is False  # only the final newline
    assert err[:-1].isprintable(), err
