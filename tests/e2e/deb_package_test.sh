#!/usr/bin/env bash
# The Debian package, built by CPack from the build tree that holds ETLD_BINARY: its files and
# modes (dpkg-deb -c), control fields and maintainer scripts (dpkg-deb -I/-e), conffiles; then
# unpacked (dpkg -x) into a throwaway root whose etld must run on the librdkafka it bundles and
# accept the pipelines it ships. The install itself (postinst creating the etld user) runs in
# the container image build (tests/e2e/container_test.sh).
source "$(dirname "$0")/lib.sh"
build=$(dirname "$etld")

version=$("$etld" --version | awk '$1 == "etld" {print $2}')
# cpack installs the build tree into its own staging dir under -B, so the build tree is untouched.
cpack --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 || {
  cat "$tmp/cpack.log" >&2; echo "0 passed, 1 failed"; exit 1; }
deb=$tmp/out/etld_${version}_amd64.deb
check "cpack made etld_${version}_amd64.deb" test -f "$deb"

# --- files and modes
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | sed 's| \./| /|' >"$tmp/files"
has() { grep -qxF -- "$1 root/root $2" "$tmp/files"; }
check "/usr/bin/etld, 0755" has -rwxr-xr-x /usr/bin/etld
units=0
for unit in "$src"/packaging/*.service; do
  units=$((units + 1))
  check "unit $(basename "$unit") in /lib/systemd/system, 0644" has -rw-r--r-- "/lib/systemd/system/$(basename "$unit")"
done
check "the unit files are packaged (found $units)" test "$units" -ge 1
check "/etc/etld/pipeline.yaml, 0640 (it may hold secrets)" has -rw-r----- /etc/etld/pipeline.yaml
for example in "$src"/examples/*.yaml; do
  check "example $(basename "$example")" has -rw-r--r-- "/etc/etld/examples/$(basename "$example")"
done
check "the docs" has -rw-r--r-- /usr/share/doc/etld/docs/operations.md
check "the Grafana dashboard" has -rw-r--r-- /usr/share/etld/grafana/etld.json
check "the Prometheus alert rules" has -rw-r--r-- /usr/share/etld/prometheus/etld-alerts.yml
check "... and their unit tests" has -rw-r--r-- /usr/share/etld/prometheus/etld-alerts.test.yml
check "everything is owned by root" test -z "$(awk '$2 != "root/root"' "$tmp/files")"
check "nothing outside etld's own places" test -z "$(awk '{print $3}' "$tmp/files" | grep -v -E \
  '^/((etc|lib|lib/systemd|lib/systemd/system|usr|usr/bin|usr/lib|usr/share|usr/share/doc)/|etc/etld/.*|lib/systemd/system/etld.*|usr/bin/etld|usr/lib/etld/.*|usr/share/doc/etld/.*|usr/share/etld/.*)$')"

# librdkafka: Debian 12's 2.0.2 is too old for Kafka 4.x, so the one the build used travels along
# unless it is the system's own.
rdkafka=$(ldd "$etld" | awk '$1 == "librdkafka.so.1" {print $3}')
if [[ $rdkafka == /usr/lib/* || $rdkafka == /lib/* ]]; then
  bundled=0
  check "a system librdkafka is a dependency" grep -q 'librdkafka1' <(dpkg-deb -f "$deb" Depends)
else
  bundled=1
  check "librdkafka bundled in /usr/lib/etld, 0644" has -rw-r--r-- /usr/lib/etld/librdkafka.so.1
  check "... and not a dependency" bash -c "! dpkg-deb -f '$deb' Depends | grep -q librdkafka"
fi

# --- control fields
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: etld" test "$(field Package)" = etld
check "Version: $version" test "$(field Version)" = "$version"
check "Architecture: amd64" test "$(field Architecture)" = amd64
check "a Maintainer" test -n "$(field Maintainer)"
check "a Description" test -n "$(field Description)"
depends=$(field Depends | tr ',' '\n' | sed -E 's/^ +//; s/ .*//' | sort -u)
for lib in adduser libc6 libpq5 libyaml-cpp0.7 libssl3 libstdc++6; do
  check "Depends names $lib" grep -qx "$lib" <<<"$depends"
done
# The container's runtime stage installs exactly these with scripts/install-deps --runtime.
runtime=$(sed -n '/^runtime_pkgs=(/,/)/p' "$src/scripts/install-deps" | tr -d '()' | sed 's/runtime_pkgs=//' | tr ' ' '\n')
for dep in $depends; do
  case $dep in libc6 | libgcc-s1 | libstdc++6) continue ;; esac  # in every Debian system
  check "install-deps --runtime installs $dep" grep -qx "${dep%-fmt9}" <<<"$runtime"
done

# --- maintainer scripts and conffiles
dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm postrm; do
  check "$script is 0755" test "$(stat -c %a "$tmp/control/$script")" = 755
  check "$script is valid sh" sh -n "$tmp/control/$script"
done
check "postinst creates the etld system user" grep -q 'adduser --system --group .* etld$' "$tmp/control/postinst"
check "postinst gives the pipeline file to the group etld, 0640, through dpkg-statoverride" \
  grep -q '^ *dpkg-statoverride --update --add root etld 0640 /etc/etld/pipeline.yaml$' "$tmp/control/postinst"
check "postrm drops that override on purge" grep -q 'dpkg-statoverride --remove /etc/etld/pipeline.yaml' "$tmp/control/postrm"
# The scripts as dpkg runs them, against a stand-in dpkg-statoverride and adduser that record
# their arguments: configure adds the override once, purge removes it.
mkdir -p "$tmp/fakebin"
for cmd in dpkg-statoverride adduser getent systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n[ "%s $1" != "dpkg-statoverride --list" ] || [ -e "%s/override" ]\n' \
    "$cmd" "$tmp" "$cmd" "$tmp" >"$tmp/fakebin/$cmd"
  chmod +x "$tmp/fakebin/$cmd"
done
PATH="$tmp/fakebin:$PATH" sh "$tmp/control/postinst" configure
touch "$tmp/override"  # now listed: a second configure (an upgrade) leaves it alone
PATH="$tmp/fakebin:$PATH" sh "$tmp/control/postinst" configure 0.0.1
PATH="$tmp/fakebin:$PATH" sh "$tmp/control/postrm" purge
check "configure adds the override once, purge removes it" test "$(grep '^dpkg-statoverride --[ur]' "$tmp/calls")" = \
  "$(printf 'dpkg-statoverride --update --add root etld 0640 /etc/etld/pipeline.yaml\ndpkg-statoverride --remove /etc/etld/pipeline.yaml')"
grep -E '^/etc/' <(awk '$1 ~ /^-/ {print $3}' "$tmp/files") | sort >"$tmp/etc-files"
check "every file under /etc is a conffile" diff "$tmp/etc-files" <(sort "$tmp/control/conffiles")

# --- the unpacked package runs on what it carries
dpkg -x "$deb" "$tmp/root"
# shellcheck disable=SC2016  # a literal $ORIGIN
check "RUNPATH is relative to the binary" test "$(readelf -d "$tmp/root/usr/bin/etld" | grep -o 'runpath: \[.*\]')" = 'runpath: [$ORIGIN/../lib/etld]'
if ((bundled)); then
  check "the unpacked etld loads the bundled librdkafka" test "$(env -i ldd "$tmp/root/usr/bin/etld" | awk '$1 == "librdkafka.so.1" {print $3}')" = "$tmp/root/usr/bin/../lib/etld/librdkafka.so.1"
fi
env -i "$tmp/root/usr/bin/etld" --version >"$tmp/version" 2>&1 || true
check "the unpacked etld --version runs with librdkafka 2.12.0" grep -qx "librdkafka 2.12.0" "$tmp/version"
check "the shipped default pipeline validates with no variable set" env -i "$tmp/root/usr/bin/etld" validate "$tmp/root/etc/etld/pipeline.yaml"
for example in "$tmp"/root/etc/etld/examples/*.yaml; do  # the examples name a DSN they need
  if [[ $example == *.test.yaml ]]; then  # the examples' tests (docs/testing.md), not pipelines
    check "the shipped $(basename "$example") passes" env -i "$tmp/root/usr/bin/etld" test "$example"
    continue
  fi
  check "the shipped $(basename "$example") validates" env -i PG_DSN=postgresql://localhost/etld \
    "$tmp/root/usr/bin/etld" validate "$example"
done

if ((fail)); then cat "$tmp/files" "$tmp/version" >&2; fi
finish
