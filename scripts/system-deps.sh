#!/usr/bin/env bash
# The system packages the tests need. The reports themselves need only
# texlive-latex-recommended, texlive-pictures and texlive-science (tests/test_tex_minimal.py
# compiles them in a tree of exactly those); the tests also need the classes papers use
# (texlive-publishers; acmart, and nbconvert's PDF template, need texlive-latex-extra), xelatex
# and pandoc (nbconvert's PDF of a notebook), poppler (pdftotext, pdffonts), Chromium (the
# HTML reports laid out in a 1000 px window) and Node/npm (KaTeX and MathJax 3 typeset every
# Markdown math block). Installs what is missing with apt-get when run as root; otherwise
# names the packages and fails.
set -euo pipefail
need=()
command -v pdflatex >/dev/null || need+=(texlive-latex-recommended texlive-fonts-recommended)
command -v pdftotext >/dev/null || need+=(poppler-utils)
kpsewhich pgfplots.sty >/dev/null 2>&1 || need+=(texlive-pictures)
kpsewhich siunitx.sty >/dev/null 2>&1 || need+=(texlive-science)
kpsewhich IEEEtran.cls >/dev/null 2>&1 || need+=(texlive-publishers)
kpsewhich tcolorbox.sty >/dev/null 2>&1 || need+=(texlive-latex-extra)
kpsewhich ulem.sty >/dev/null 2>&1 || need+=(texlive-plain-generic)
command -v xelatex >/dev/null || need+=(texlive-xetex)
command -v pandoc >/dev/null || need+=(pandoc)
command -v chromium >/dev/null || need+=(chromium)
command -v dpkg-query >/dev/null || { echo "the tests read Debian's package lists" >&2; exit 1; }
command -v npm >/dev/null || need+=(nodejs npm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "the tests need these system packages: ${need[*]}" >&2
  echo "install them (Debian/Ubuntu: sudo apt-get install ${need[*]}) and run make test again" >&2
  exit 1
fi
