"""A TeX installation with only texlive-latex-recommended, texlive-pictures and
texlive-science (and what they depend on), carved out of the system's: the files of exactly
those Debian packages, linked into a private tree that kpathsea is pointed at through its
environment variables (``TEXMF``, ``TEXMFDBS``, ...). Nothing else the machine has installed
(lmodern, cm-super, texlive-latex-extra, texlive-fonts-extra) can be found, so a report that
compiles here compiles on a fresh machine with those three packages, whatever fonts this one
happens to have.

Debian (dpkg) is what `make test` runs on (scripts/system-deps.sh installs with apt-get)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = ("texlive-latex-recommended", "texlive-pictures", "texlive-science")
# the trees TeX searches (the installed files of a package live under these)
ROOTS = {
    "dist": Path("/usr/share/texlive/texmf-dist"),
    "main": Path("/usr/share/texmf"),
}
# generated at install time, not listed by any package: the formats and the font map
GENERATED = ("web2c/pdftex/pdflatex.fmt", "fonts/map/pdftex/updmap/pdftex.map")
SYSVAR = Path("/var/lib/texmf")


def _depends(package: str) -> list[str]:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Depends}", package], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"{package} is not installed; `bash scripts/system-deps.sh` installs it")
    names = []
    for alternative in done.stdout.split(","):
        name = re.split(r"[\s(:|]", alternative.strip(), maxsplit=1)[0]
        if name.startswith(("texlive-", "tex-common", "fonts-")):
            names.append(name)
    return names


def closure(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages and their TeX and font dependencies, recursively."""
    if shutil.which("dpkg-query") is None:
        pytest.fail(
            "the minimal-TeX tests read Debian's package lists (dpkg-query); run them "
            "on Debian/Ubuntu, where `make test` installs TeX with apt-get"
        )
    seen: list[str] = []
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo += _depends(name)
    return sorted(seen)


def build(folder: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Link the packages' TeX files into ``folder``; return the environment that makes
    pdflatex see only them."""
    names = closure(packages)
    listed = subprocess.run(["dpkg", "-L", *names], capture_output=True, text=True, check=True)
    count = 0
    for line in listed.stdout.splitlines():
        path = Path(line)
        if path.name == "ls-R":
            continue  # the system's file database: mktexlsr below writes the tree's own
        for tree, root in ROOTS.items():
            if root in path.parents and path.is_file():
                target = folder / tree / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(path.resolve())
                    count += 1
    for relative in GENERATED:
        source = SYSVAR / relative
        if not source.is_file():
            pytest.fail(f"{source} is missing: TeX is not fully installed")
        target = folder / "var" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    assert count > 1000, f"only {count} TeX files in {', '.join(names)}"
    trees = [folder / "var", folder / "main", folder / "dist"]
    for tree in trees:
        database = tree / "ls-R"
        # never write through a link into the system's own database
        assert not database.is_symlink(), database
    subprocess.run(["mktexlsr", *map(str, trees)], capture_output=True, check=True)
    empty = folder / "empty"
    empty.mkdir(exist_ok=True)
    listing = ",".join(f"!!{t}" for t in trees)
    return {
        "TEXMF": "{" + listing + "}",
        "TEXMFDBS": "{" + listing + "}",
        "TEXMFDIST": str(folder / "dist"),
        "TEXMFMAIN": str(folder / "main"),
        "TEXMFLOCAL": str(empty),
        "TEXMFSYSVAR": str(folder / "var"),
        "TEXMFVAR": str(folder / "var"),
        "VARTEXFONTS": str(folder / "var" / "fonts"),
        "TEXMFSYSCONFIG": str(empty),
        "TEXMFCONFIG": str(empty),
        "TEXMFHOME": str(empty),
        "TEXMFAUXTREES": "",
    }
