#!/usr/bin/env bash
# System libraries a real Qt window needs (xcb) and, for the window smoke test, Xvfb and xdotool.
# Installs them with apt-get when run as root; otherwise prints the command to run.
set -u
mode="${1:-window}"
pkgs=(libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1
      libxkbcommon-x11-0 libxcb-cursor0 libxcb-shape0 libxcb-randr0 libegl1 libgl1 libfontconfig1 libdbus-1-3)
if [ "$mode" = test ]; then pkgs+=(xvfb xdotool); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages for Qt windows: ${missing[*]}" >&2
  (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
   { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; }) && exit 0
  echo "could not install: ${missing[*]}" >&2
  exit 1
fi
echo "a real window needs: sudo apt-get install ${missing[*]}" >&2
exit 1
