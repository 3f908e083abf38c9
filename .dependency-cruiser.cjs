/** Arrows point inward (ARCHITECTURE.md): these rules fail CI when a layer reaches outwards. */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'src/domain is plain TypeScript: no other layer, no npm package, no Node I/O.',
      severity: 'error',
      from: { path: '^src/domain' },
      to: { pathNot: '^src/domain' },
    },
    {
      name: 'application-imports-domain-only',
      severity: 'error',
      from: { path: '^src/application' },
      to: { path: '^src/(infrastructure|projections|main|cli|config|composition-root)' },
    },
    {
      name: 'projections-import-domain-only',
      severity: 'error',
      from: { path: '^src/projections' },
      to: { path: '^src/(infrastructure|application|main|cli|config|composition-root)' },
    },
    {
      name: 'only-entry-points-import-infrastructure',
      severity: 'error',
      from: { path: '^src/(domain|application|projections)' },
      to: { path: '^src/infrastructure' },
    },
    {
      name: 'tsyringe-only-in-the-composition-root',
      comment: 'The container lives in src/composition-root.ts; everything else receives plain objects.',
      severity: 'error',
      from: { pathNot: '^src/composition-root\\.ts$' },
      to: { path: 'node_modules/(tsyringe|reflect-metadata)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // TypeScript 7 has no compiler API for dependency-cruiser to use; swc parses the sources instead.
    parser: 'swc',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
