// What the TAP watcher (src/io/tap-watch.ts) reports and `vxland doctor`
// (src/doctor.ts) judges: the io layer observes, the doctor rules decide.

/** What the TAP watcher could not keep as configured. */
export interface TapCondition {
  dev: string;
  /** An admin set the link down (the daemon leaves it down). */
  down: boolean;
  /** MTU or addresses it failed to put back, with the kernel's answer. */
  unrestored: ReadonlyArray<{ what: 'mtu' | 'address'; value: string; reason: string }>;
  /** The TAP failed (e.g. deleted with `ip link del`) and the network is no
   *  longer carried: the data path's error line; null while it works. */
  failed: string | null;
}
