/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.' or '_' (ids of nodes, jobs, exports, objects, devices). */
export function isWellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}
