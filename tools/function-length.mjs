#!/usr/bin/env node
// Fails when a function or closure in src/ or tools/ runs past MAX_LINES lines (its whole span, nested closures
// included): a reader should be able to hold one in view. swc parses (already a dev dependency: dependency-cruiser
// uses it); no type information is needed to measure a span.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseSync } from '@swc/core';

const MAX_LINES = 120;
const ROOT = join(import.meta.dirname, '..');
const DIRECTORIES = ['src', 'tools'];

const FUNCTIONS = new Set([
  'FunctionDeclaration',
  'FunctionExpression',
  'ArrowFunctionExpression',
  'ClassMethod',
  'PrivateMethod',
  'Constructor',
  'MethodProperty',
  'GetterProperty',
  'SetterProperty',
]);

function* sourceFiles(directory) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') yield* sourceFiles(path);
    } else if (/\.(ts|tsx|mjs|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      yield path;
    }
  }
}

/** Line number (1-based) of each byte offset: swc spans count UTF-8 bytes from 1. */
function lineOfByte(text) {
  const bytes = Buffer.from(text, 'utf8');
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

const nameOf = (node, parent) =>
  node.identifier?.value ?? node.key?.value ?? (parent?.type === 'VariableDeclarator' ? parent.id?.value : undefined) ?? '<anonymous>';

function* functionsOf(node, parent = null) {
  if (Array.isArray(node)) {
    for (const child of node) yield* functionsOf(child, parent);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  if (FUNCTIONS.has(node.type)) yield { node, name: nameOf(node, parent) };
  for (const [key, value] of Object.entries(node)) {
    if (key !== 'span' && value && typeof value === 'object') yield* functionsOf(value, node);
  }
}

const tooLong = [];
for (const directory of DIRECTORIES) {
  for (const file of sourceFiles(join(ROOT, directory))) {
    const text = readFileSync(file, 'utf8');
    const path = relative(ROOT, file);
    const module = parseSync(text, { syntax: /\.m?js$/.test(file) ? 'ecmascript' : 'typescript', tsx: file.endsWith('.tsx') });
    const line = lineOfByte(text);
    for (const { node, name } of functionsOf(module.body)) {
      const start = line(node.span.start - 1);
      const lines = line(node.span.end - 1) - start + 1;
      if (lines > MAX_LINES) tooLong.push(`${path}:${start} ${name}: ${lines} lines`);
    }
  }
}

if (tooLong.length > 0) {
  console.error(`functions over ${MAX_LINES} lines:\n${tooLong.map((t) => `  ${t}`).join('\n')}`);
  process.exit(1);
}
console.log(`no function over ${MAX_LINES} lines in ${DIRECTORIES.join(', ')}`);
