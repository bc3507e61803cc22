// Where a bundle is now. Each bundle (scripts/bundle.mjs) declares its own __plumbModuleUrl (its
// import.meta.url, from __filename: where it finds the package root and the setns addon) and
// holds its own copy of this module, so relocate() moves the bundle that exports it. A start-up
// snapshot holding a bundle (dist/plumb-ops.blob, dist/plumb-cni.blob) loaded it where the build
// ran, so its deserialised main says where the run found it; only there: elsewhere the bundle
// knows its own file.

declare let __plumbModuleUrl: string

export function relocate(url: string): void {
  __plumbModuleUrl = url
}
