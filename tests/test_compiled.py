"""kscc_traffic/compiled.py: which compiled parts are built, as ``--version`` and bench/run.py
say it (a source tree whose .so files were removed runs the Python fallbacks without a word
otherwise: session 47 found its benchmark figures taken that way)."""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from kscc_traffic import __version__, compiled

ROOT = Path(__file__).resolve().parent.parent


def _setup_extensions() -> list[str]:
    """The first argument of every ``Extension(...)`` call in setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Extension"]


def test_the_parts_are_setup_pys_extensions_in_its_order():
    assert [name for name, _ in compiled.PARTS] == _setup_extensions()
    assert len(compiled.PARTS) == 7


def test_a_part_that_does_not_import_is_missing(monkeypatch):
    before = compiled.missing()
    monkeypatch.setitem(sys.modules, "kscc_traffic._textcodes", None)   # import raises ImportError
    monkeypatch.setitem(sys.modules, "kscc_traffic.capture._walk", None)
    gone = compiled.missing()
    assert gone == sorted(set(before) | {"capture._walk", "_textcodes"},
                          key=[n.removeprefix("kscc_traffic.") for n, _ in compiled.PARTS].index)
    line = compiled.summary()
    assert line.startswith(f"compiled parts: {7 - len(gone)} of 7 built (missing: ")
    assert "capture._walk" in line and "_textcodes" in line and "pip install -e ." in line


def test_summary_of_this_install_names_exactly_what_does_not_import():
    built = [n for n, _ in compiled.PARTS if _imports(n)]
    line = compiled.summary()
    assert line.startswith(f"compiled parts: {len(built)} of 7 built")
    assert ("missing" in line) == (len(built) < 7)


def _imports(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _blocking_cli(tmp_path: Path, blocked: list[str]) -> Path:
    """A script that starts the command line with ``blocked`` modules unimportable."""
    script = tmp_path / "kscc.py"
    script.write_text("import sys\n"
                      f"for m in {blocked!r}:\n    sys.modules[m] = None\n"
                      "from kscc_traffic.cli import main\n"
                      "sys.argv[0] = 'kscc-traffic'\nmain()\n")
    return script


def test_version_says_which_parts_are_missing(tmp_path):
    script = _blocking_cli(tmp_path, ["kscc_traffic._keyhash"])
    p = subprocess.run([sys.executable, str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    assert first == f"kscc-traffic {__version__}"
    assert second.startswith("compiled parts: ") and "_keyhash" in second.split("(missing: ")[1]


def test_the_benchmark_reads_the_count_from_the_install_it_times(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_run_compiled", ROOT / "bench" / "run.py")
    run = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        sys.modules["bench_run_compiled"] = run
        spec.loader.exec_module(run)
    finally:
        sys.path.remove(str(ROOT / "bench"))
        sys.modules.pop("bench_run_compiled", None)
    script = _blocking_cli(tmp_path, ["kscc_traffic._keyhash", "kscc_traffic._tcpstate"])
    got = run.compiled_parts([sys.executable, str(script)])
    assert got["of"] == 7 and got["built"] <= 5 and "_keyhash" in got["line"] and "_tcpstate" in got["line"]
    assert run.compiled_parts([sys.executable, "-c", "print('kscc-traffic 0.0')"])["built"] is None
    assert run.compiled_parts([str(tmp_path / "no-such-program")])["built"] is None


def _fake_part(tmp_path, monkeypatch, name="stalepkg"):
    """A package ``name`` with a built part ``_x`` (an empty file with this Python's extension
    suffix: found, never loaded), its C source ``_x.c`` including ``_h.h``, and :data:`PARTS`
    naming only it; returns (built file, source, header)."""
    import importlib.machinery
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    built = pkg / f"_x{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    source, header = pkg / "_x.c", pkg / "_h.h"
    source.write_text('#include <Python.h>\n  #  include "_h.h"\n')
    header.write_text("/* */\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(compiled, "PARTS", ((f"{name}._x", "a fake part"),))
    return built, source, header


def _times(built, source, header, b, s, h):
    import os
    for path, t in ((built, b), (source, s), (header, h)):
        os.utime(path, (t, t))


def test_a_part_built_before_its_source_or_header_changed_is_stale(tmp_path, monkeypatch):
    built, source, header = _fake_part(tmp_path, monkeypatch)
    _times(built, source, header, 1_000_000, 999_000, 999_000)       # built after both
    assert compiled.stale() == [] and compiled.stale_line() == ""
    _times(built, source, header, 1_000_000, 1_000_001, 999_000)     # within the slack (whole seconds)
    assert compiled.stale() == []
    _times(built, source, header, 1_000_000, 1_000_010, 999_000)     # the source edited after the build
    assert compiled.stale() == ["stalepkg._x"]
    _times(built, source, header, 1_000_000, 999_000, 1_000_010)     # the header it includes edited
    assert compiled.stale() == ["stalepkg._x"]
    line = compiled.stale_line()
    assert line.startswith("compiled parts older than their C source") and "stalepkg._x" in line
    assert compiled.summary().endswith(f"(older than their C source: stalepkg._x: {compiled.REBUILD})")


def test_a_part_without_its_source_beside_it_is_not_stale(tmp_path, monkeypatch):
    built, source, header = _fake_part(tmp_path, monkeypatch, "wheelpkg")
    _times(built, source, header, 1_000_000, 1_000_010, 1_000_010)
    source.unlink()                         # (an installed wheel: no C source beside the build)
    assert compiled.stale() == []


def test_the_cli_warns_of_stale_parts_before_analysing(monkeypatch):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    monkeypatch.setattr(compiled, "stale", lambda: ["_tcpstate"])
    out = CliRunner().invoke(app, ["analyze", "/nonexistent/x.pcap"])
    assert out.exit_code == 2
    assert out.output.startswith("Warning: compiled parts older than their C source (built before the source "
                                 "changed): _tcpstate: ")


def test_a_source_whose_time_alone_changed_is_not_stale(tmp_path, monkeypatch):
    # (touch, or a git checkout of another branch and back: newer times, the same text as the
    # build's; the part carries the digest it was built from, setup.py's source_sha256)
    built, source, header = _fake_part(tmp_path, monkeypatch, "touchpkg")
    built_from = compiled.source_digest(str(source))
    monkeypatch.setattr(compiled, "_built_from", lambda name: built_from)
    _times(built, source, header, 1_000_000, 1_000_010, 1_000_010)
    assert compiled.stale() == []
    header.write_text("/* edited */\n")                      # the header's text changed: stale
    _times(built, source, header, 1_000_000, 999_000, 1_000_010)
    assert compiled.stale() == ["touchpkg._x"]
    monkeypatch.setattr(compiled, "_built_from", lambda name: "")   # (built without the digest:
    header.write_text("/* */\n")                                      # the times alone decide)
    _times(built, source, header, 1_000_000, 1_000_010, 999_000)
    assert compiled.stale() == ["touchpkg._x"]


def test_the_source_digest_covers_the_source_and_its_included_headers(tmp_path, monkeypatch):
    built, source, header = _fake_part(tmp_path, monkeypatch, "digestpkg")
    import hashlib
    assert compiled.source_digest(str(source)) == hashlib.sha256(source.read_bytes() + header.read_bytes()).hexdigest()
    header.unlink()                                                   # (an absent header is left out)
    assert compiled.source_digest(str(source)) == hashlib.sha256(source.read_bytes()).hexdigest()


def test_each_built_part_carries_its_sources_digest():
    # setup.py builds each part with its C source's digest (KSCC_SOURCE_SHA256): a part built
    # here from this tree's sources says the digest of their text now (or is stale: rebuild)
    import importlib
    import importlib.util
    import os
    checked = 0
    for name, _ in compiled.PARTS:
        try:
            part = importlib.import_module(name)
        except ImportError:
            continue                                                  # (not built: the fallback runs)
        source = os.path.join(os.path.dirname(importlib.util.find_spec(name).origin), name.rsplit(".", 1)[1] + ".c")
        if not os.path.exists(source):
            continue                                                  # (a wheel: no source beside it)
        assert part.source_sha256 == compiled.source_digest(source), f"{name}: rebuild (python setup.py build_ext --inplace)"
        checked += 1
    if not checked:
        pytest.skip("no compiled part built beside its source here")
