/**
 * The user data every testbed instance boots with: the lifetime timer that makes a forgotten
 * testbed stop costing money. The instance is launched with shutdown behaviour `terminate`, so
 * powering off from inside terminates it. Two timers, so that neither a missing systemd nor a stop
 * and start defeats it:
 *  - `shutdown -h +MINUTES` at first boot (any Linux; gone after a reboot);
 *  - a systemd timer on the absolute deadline with `Persistent=true`, which survives a reboot or a
 *    stop and start (cloud-init runs user data once, but the unit stays enabled) and fires at once
 *    when the instance boots after its deadline.
 * The deadline is also the instance's `troupe:expires` tag, from which `status` shows the time left.
 */

/** The user data script (plain text; the caller base64-encodes it for RunInstances). */
export function lifetimeUserData(testbedId: string, maxLifetimeMinutes: number, expires: Date): string {
  const calendar = expires.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return [
    '#!/bin/sh',
    `# troupe testbed ${testbedId}: this instance powers itself off (and is terminated) ${maxLifetimeMinutes} minutes after launch, at ${expires.toISOString()}.`,
    `shutdown -h +${maxLifetimeMinutes} 'troupe testbed lifetime reached' || true`,
    'if command -v systemctl >/dev/null 2>&1; then',
    "  cat > /etc/systemd/system/troupe-lifetime.timer <<'EOF'",
    '[Unit]',
    `Description=troupe testbed ${testbedId}: power off at the end of the maximum lifetime`,
    '[Timer]',
    `OnCalendar=${calendar}`,
    'Persistent=true',
    '[Install]',
    'WantedBy=timers.target',
    'EOF',
    "  cat > /etc/systemd/system/troupe-lifetime.service <<'EOF'",
    '[Unit]',
    `Description=troupe testbed ${testbedId}: maximum lifetime reached`,
    '[Service]',
    'Type=oneshot',
    'ExecStart=/bin/systemctl poweroff',
    'EOF',
    '  systemctl daemon-reload && systemctl enable --now troupe-lifetime.timer || true',
    'fi',
    '',
  ].join('\n');
}
