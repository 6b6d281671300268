#!/usr/bin/env bash
# The system packages the tests need: LaTeX (every generated .tex is compiled: pgfplots,
# siunitx, IEEEtran/elsarticle), poppler (pdftotext) and Node/npm (KaTeX parses every
# Markdown math block). Installs what is missing with apt-get when run as root; otherwise
# names the packages and fails.
set -euo pipefail
need=()
command -v pdflatex >/dev/null || need+=(texlive-latex-recommended texlive-fonts-recommended)
command -v latexmk >/dev/null || need+=(latexmk)
command -v pdftotext >/dev/null || need+=(poppler-utils)
kpsewhich pgfplots.sty >/dev/null 2>&1 || need+=(texlive-pictures)
# The standalone reports load lmodern (Type 1 T1 fonts); Debian leaves it out with
# --no-install-recommends.
kpsewhich lmodern.sty >/dev/null 2>&1 || need+=(lmodern)
kpsewhich siunitx.sty >/dev/null 2>&1 || need+=(texlive-science)
kpsewhich IEEEtran.cls >/dev/null 2>&1 || need+=(texlive-publishers)
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
