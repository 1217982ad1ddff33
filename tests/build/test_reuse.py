"""What cold builds reuse from each other: keys that change exactly with their inputs, the
first-compile gate, the ccache stats (the docker test is in test_builder.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.build import reuse
from harness.build.builder import BOOTSTRAP


def _tree(root: Path) -> Path:
    for name, text in {
        "configure.ac": "AC_INIT([fetchmail],[6.4.33])\n",
        "Makefile.am": "bin_PROGRAMS = fetchmail\n",
        "m4/ax.m4": "dnl macro\n",
        "po/Makefile.am": "# po\n",
        "fetchmail.c": "int main(void) { return 0; }\n",
        "NEWS": "news\n",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_bootstrap_key_follows_the_autotools_inputs_and_nothing_else(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "src")
    key = reuse.bootstrap_key(tree, "recipe", BOOTSTRAP)
    assert key == reuse.bootstrap_key(tree, "recipe", BOOTSTRAP)
    (tree / "fetchmail.c").write_text("int main(void) { return 1; }\n")
    (tree / "NEWS").write_text("more news\n")
    assert reuse.bootstrap_key(tree, "recipe", BOOTSTRAP) == key, "sources are no input"
    assert reuse.bootstrap_key(tree, "other recipe", BOOTSTRAP) != key
    assert reuse.bootstrap_key(tree, "recipe", "autoreconf -fi") != key
    changed = set()
    for name, edit in (("configure.ac", "AC_INIT([fetchmail],[6.4.34])\n"),
                       ("po/Makefile.am", "# po 2\n"), ("m4/ax.m4", "dnl other\n")):
        before = (tree / name).read_text()
        (tree / name).write_text(edit)
        changed.add(reuse.bootstrap_key(tree, "recipe", BOOTSTRAP))
        (tree / name).write_text(before)
    assert len(changed) == 3 and key not in changed
    (tree / "ChangeLog").write_text("automake looks for this file\n")
    assert reuse.bootstrap_key(tree, "recipe", BOOTSTRAP) != key, "a new file is an input"


def test_configure_cache_is_per_recipe_family_and_arguments() -> None:
    base = reuse.configure_key("bookworm", "6.4", ["--with-ssl", "CFLAGS=-g -O2"])
    assert base == reuse.configure_key("bookworm", "6.4", ["--with-ssl", "CFLAGS=-g -O2"])
    assert base != reuse.configure_key("trixie", "6.4", ["--with-ssl", "CFLAGS=-g -O2"])
    assert base != reuse.configure_key("bookworm", "6.3", ["--with-ssl", "CFLAGS=-g -O2"])
    assert base != reuse.configure_key("bookworm", "6.4", ["--with-ssl", "CFLAGS=-g -O0"])
    assert [reuse.release_family(v) for v in ("6.4.28", "6.3.0", "6.5.0.beta7", "next")] == [
        "6.4", "6.3", "6.5", "next"]


def test_autopoint_key_follows_what_autopoint_reads_not_the_release(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "src")
    assert reuse.autopoint_key(tree, "recipe", BOOTSTRAP) is None, "no gettext: no autopoint"
    gettext = "AM_GNU_GETTEXT([external])\nAM_GNU_GETTEXT_VERSION([0.19.8])\n"
    (tree / "configure.ac").write_text("AC_INIT([fetchmail],[6.4.33])\n" + gettext)
    (tree / "po" / "de.po").write_text("msgid \"\"\n")
    key = reuse.autopoint_key(tree, "recipe", BOOTSTRAP)
    assert key is not None
    (tree / "configure.ac").write_text("AC_INIT([fetchmail],[6.4.34])\nAC_PROG_CC\n" + gettext)
    (tree / "fetchmail.c").write_text("int main(void) { return 1; }\n")
    (tree / "po" / "de.po").write_text("msgid \"x\"\n")
    assert reuse.autopoint_key(tree, "recipe", BOOTSTRAP) == key, "another release, same key"
    changed = set()
    for name, edit in (("configure.ac", gettext.replace("0.19.8", "0.21")),
                       ("po/Makefile.am", "# po 2\n"), ("m4/ax.m4", "dnl other\n"),
                       ("Makefile.am", "ACLOCAL_AMFLAGS = -I m4\n")):
        before = (tree / name).read_text()
        (tree / name).write_text(edit)
        changed.add(reuse.autopoint_key(tree, "recipe", BOOTSTRAP))
        (tree / name).write_text(before)
    changed.add(reuse.autopoint_key(tree, "other recipe", BOOTSTRAP))
    assert len(changed) == 5 and key not in changed


def test_ccache_counts_read_the_stats_log() -> None:
    log = ("# a.c\ncache_miss\ndirect_cache_miss\npreprocessed_cache_miss\n"
           "# b.c\ndirect_cache_hit\nlocal_storage_hit\n# c.c\npreprocessed_cache_hit\n")
    assert reuse.ccache_counts(log) == {"hits": 2, "misses": 1}


def test_the_first_compile_of_a_family_runs_alone(tmp_path: Path) -> None:
    store = reuse.Store(tmp_path)
    order: list[str] = []
    trying = threading.Event()

    def second() -> None:
        trying.set()
        with store.first_compile("image flags") as first:
            order.append(f"second first={first}")

    with store.first_compile("image flags") as first:
        assert first
        waiter = threading.Thread(target=second)
        waiter.start()
        trying.wait()
        waiter.join(1.0)  # room for a broken gate to let it in before the first is done
        order.append("first done")
    waiter.join()
    assert order == ["first done", "second first=False"]
    with store.first_compile("other flags") as first:
        assert first, "another family has its own first compile"


def test_a_failed_first_compile_leaves_the_next_one_first(tmp_path: Path) -> None:
    store = reuse.Store(tmp_path)
    with pytest.raises(RuntimeError), store.first_compile("f"):
        raise RuntimeError("compile failed")
    with store.first_compile("f") as first:
        assert first


def test_the_first_configure_of_a_family_runs_alone(tmp_path: Path) -> None:
    """The builds beside the first configure wait for the config.cache it writes; a failed
    one writes none, so the next build goes first."""
    store = reuse.Store(tmp_path)
    cache_file = store.configure("c" * 64)
    with pytest.raises(RuntimeError), store.first_configure(cache_file):
        raise RuntimeError("configure failed")
    order: list[str] = []
    trying = threading.Event()

    def second() -> None:
        trying.set()
        with store.first_configure(cache_file) as first:
            order.append(f"second first={first} cache={cache_file.is_file()}")

    with store.first_configure(cache_file) as first:
        assert first
        waiter = threading.Thread(target=second)
        waiter.start()
        trying.wait()
        waiter.join(1.0)  # room for a broken gate to let it in before the cache exists
        cache_file.write_text("ac_cv_x=yes\n")
        order.append("first done")
    waiter.join()
    assert order == ["first done", "second first=False cache=True"]


def test_keep_replaces_the_stored_file(tmp_path: Path) -> None:
    store = reuse.Store(tmp_path)
    dest = store.configure("k" * 64)
    for text in ("one", "two"):
        produced = tmp_path / "produced"
        produced.write_text(text)
        store.keep(produced, dest)
    assert dest.read_text() == "two" and not (tmp_path / "produced").exists()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]
