#!/usr/bin/env bash
# The unit files in packaging/ as systemd reads them: `systemd-analyze verify` prints nothing
# (no unknown key, no bad value, every command executable) and the hardening keeps the
# exposure level of `systemd-analyze security` at "OK". verify needs the commands to exist, so
# it checks copies whose /usr/bin/etld is the binary just built; everything else is verbatim.
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (scripts/install-deps installs systemd)" >&2; exit 1; }

for unit in etld.service etld@.service; do
  check "$unit uses /usr/bin/etld" grep -q '^ExecStart=/usr/bin/etld run /etc/etld/' "$src/packaging/$unit"
  sed "s#/usr/bin/etld #$etld #" "$src/packaging/$unit" >"$tmp/$unit"
done
# A template is verified through an instance of it.
for name in etld.service etld@orders.service; do
  set +e
  out=$(systemd-analyze verify "$tmp/$name" 2>&1)
  rc=$?
  set -e
  check "systemd-analyze verify $name exits 0 (got $rc)" test "$rc" = 0
  check "systemd-analyze verify $name prints no warning: $out" test -z "$out"
  check "$name is hardened (systemd-analyze security exposure <= 2.5)" \
    systemd-analyze security --offline=yes --threshold=25 "$tmp/$name" >/dev/null
done

# What the units promise: notify, reload = validate then SIGHUP, watchdog, restart, a
# dedicated user, the sandbox and ceilings on memory and tasks.
for unit in etld.service etld@.service; do
  for line in 'Type=notify' 'ExecReload=/usr/bin/etld validate /etc/etld/' 'ExecReload=/bin/kill -HUP $MAINPID' \
    'ExecStartPre=/usr/bin/etld validate /etc/etld/' 'WatchdogSec=' 'Restart=on-failure' 'User=etld' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
    'RestrictAddressFamilies=' 'LimitNOFILE=' 'MemoryMax=' 'TasksMax='; do
    check "$unit has $line" grep -qF -- "$line" "$src/packaging/$unit"
  done
done
check "etld@.service runs /etc/etld/%i.yaml" grep -q '^ExecStart=/usr/bin/etld run /etc/etld/%i.yaml$' "$src/packaging/etld@.service"
check "etld.service runs /etc/etld/pipeline.yaml" grep -q '^ExecStart=/usr/bin/etld run /etc/etld/pipeline.yaml$' "$src/packaging/etld.service"

# A broken unit is caught: the test can fail.
sed 's/^ProtectHome=yes/ProtectHom=yes/' "$tmp/etld.service" >"$tmp/broken.service"
check "verify reports an unknown key" bash -c "systemd-analyze verify '$tmp/broken.service' 2>&1 | grep -q \"Unknown key 'ProtectHom'\""

finish
