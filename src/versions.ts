/** Dotted version strings (`2.10.3`, `v2.9.10-beta`): the one comparison the sidecar and the launcher share. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split(/[.-]/).map((p) => parseInt(p, 10) || 0);
  const pb = b.replace(/^v/, '').split(/[.-]/).map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
