import { platform } from '#platform';

function readVersion(): string {
  // dist/src/version.js → package.json two folders up (also right for src/ under tsx)
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(
        new TextDecoder().decode(platform.files.readAssetSync(new URL(rel, import.meta.url))),
      );
      if (pkg.name === 'clip-dissect') return String(pkg.version);
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

/** The package version, part of every cache key and of args.json. */
export const VERSION = readVersion();
