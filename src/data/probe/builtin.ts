/**
 * The built-in probe datasets: the CIFAR-100 splits, downloaded once (the published MD5 checked, the archive's
 * SHA-256 pinned on first use), extracted into `<cacheDir>/datasets/cifar-100-binary/`.
 */

import { platform } from '#platform';
import { writeFileAtomic } from '../../io/atomic.js';
import { defaultCacheDir } from '../../io/cache-dir.js';
import { markUsed } from '../../io/cache-files.js';
import { type DownloadCheck, downloadFile, temporarySibling } from '../../io/download.js';
import { describeFsError, fsErrorCode } from '../../io/files.js';
import { sha256Hex } from '../../io/sha256.js';
import { formatChoices } from '../../numeric/errors.js';
import {
  CIFAR_PIXELS,
  CIFAR10_FILES,
  CIFAR100,
  CIFAR100_CLASSES,
  CIFAR100_FILES,
  openCifarFile,
} from './cifar.js';
import { readTar } from './tar.js';
import { type OpenedSource, type ProbeContext, ProbeDatasetError } from './types.js';

const { files, paths } = platform;
const { join } = paths;

/** The decompressed content of a gzip file, through the web-standard DecompressionStream. */
async function gunzipFile(path: string): Promise<Uint8Array> {
  const chunks = files.readChunks(path, 1 << 20)[Symbol.asyncIterator]();
  const input = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
  });
  return new Uint8Array(await new Response(input.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
}

/** The archive of the built-in datasets, as published by its authors. */
const CIFAR100_ARCHIVE = {
  file: 'cifar-100-binary.tar.gz',
  url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
  /** The MD5 published with the archive on https://www.cs.toronto.edu/~kriz/cifar.html. No SHA-256 is
   * published: the archive's SHA-256 is pinned in the cache at the first download (trust on first use) and
   * every later download must match it. */
  md5: '03b5dce01913d631647c71ecec9e9cb8',
  /** The folder inside the archive. */
  folder: 'cifar-100-binary',
} as const;

export const BUILTIN_PROBE_DATASETS: Readonly<Record<string, { member: string; description: string }>> = {
  cifar100_train: { member: 'train.bin', description: 'CIFAR-100 training split (50,000 images, 32×32)' },
  cifar100_val: { member: 'test.bin', description: 'CIFAR-100 test split (10,000 images, 32×32)' },
};

/** What the cache records about the downloaded archive (`<cacheDir>/datasets/cifar-100-binary.json`). */
interface ArchivePin {
  archive: string;
  md5: string;
  /** Pinned at the first download (trust on first use). */
  sha256: string;
  members: Record<string, { size: number; sha256: string }>;
}

async function readPin(path: string): Promise<ArchivePin | undefined> {
  let text: string;
  try {
    text = await files.readText(path);
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw new ProbeDatasetError(`${path}: cannot read the dataset cache record (${describeFsError(err)})`);
  }
  try {
    const pin = JSON.parse(text) as ArchivePin;
    if (typeof pin.sha256 !== 'string' || typeof pin.members !== 'object' || pin.members === null)
      throw new Error();
    return pin;
  } catch {
    throw new ProbeDatasetError(
      `${path}: the dataset cache record is corrupt (not the JSON clip-dissect writes); delete it to download the dataset again and pin the archive's SHA-256 anew`,
    );
  }
}

export async function openBuiltin(name: string, options: ProbeContext): Promise<OpenedSource> {
  const { member } = BUILTIN_PROBE_DATASETS[name];
  const root = join(options.cacheDir ?? defaultCacheDir(), 'datasets');
  const pinPath = join(root, `${CIFAR100_ARCHIVE.folder}.json`);
  const file = join(root, CIFAR100_ARCHIVE.folder, member);
  for (let attempt = 0; ; attempt++) {
    const pin = await readPin(pinPath);
    const want = pin?.members[member];
    if (
      want &&
      (await files.stat(file).then(
        (s) => s.size === want.size,
        () => false,
      ))
    ) {
      const { segment, images, sha256 } = await openCifarFile(file, CIFAR100, options);
      if (sha256 === want.sha256) {
        await markUsed(pinPath); // its modification time is the dataset's last use (clip-dissect cache)
        return {
          source: { spec: name, kind: 'cifar100', path: file, classes: [...CIFAR100_CLASSES] },
          images,
          segments: [segment],
          warnings: [],
        };
      }
      if (attempt > 0) {
        throw new ProbeDatasetError(
          `${file}: changed right after it was extracted (SHA-256 ${sha256}); giving up`,
        );
      }
      await files.rm(file, { force: true }); // corrupted in the cache: extract it again
      await downloadCifar100(name, root, pinPath, pin, `is corrupted in the cache (${file})`, options);
      continue;
    }
    if (attempt > 0) throw new ProbeDatasetError(`${file}: missing right after it was extracted; giving up`);
    await downloadCifar100(
      name,
      root,
      pinPath,
      pin,
      `is not in the cache (${join(root, CIFAR100_ARCHIVE.folder)})`,
      options,
    );
  }
}

async function downloadCifar100(
  name: string,
  root: string,
  pinPath: string,
  pin: ArchivePin | undefined,
  why: string,
  options: ProbeContext,
): Promise<void> {
  const url = options.baseUrl
    ? `${options.baseUrl.replace(/\/?$/, '/')}${CIFAR100_ARCHIVE.file}`
    : CIFAR100_ARCHIVE.url;
  const dir = join(root, CIFAR100_ARCHIVE.folder);
  if (options.offline) {
    throw new ProbeDatasetError(
      `built-in probe dataset '${name}' ${why} and offline mode forbids downloading it; run once without --offline, or download ${url} yourself, extract it and pass ${join(CIFAR100_ARCHIVE.folder, BUILTIN_PROBE_DATASETS[name].member)}`,
    );
  }
  // a temporary name: only the extracted members stay in the cache (an interrupted run leaves a partial file)
  const archive = temporarySibling(join(root, CIFAR100_ARCHIVE.file), 'part');
  const published =
    options.archiveChecksums?.md5 ?? (options.archiveChecksums?.sha256 ? undefined : CIFAR100_ARCHIVE.md5);
  const checks: DownloadCheck[] = [];
  if (published)
    checks.push({
      algorithm: 'md5',
      value: published,
      from: options.archiveChecksums?.md5 ? 'archiveChecksums.md5' : 'the published MD5',
    });
  if (options.archiveChecksums?.sha256)
    checks.push({
      algorithm: 'sha256',
      value: options.archiveChecksums.sha256,
      from: 'archiveChecksums.sha256',
    });
  if (pin)
    checks.push({
      algorithm: 'sha256',
      value: pin.sha256,
      from: `pinned in ${pinPath} when the archive was first downloaded; if the publisher really changed the archive, delete that file to accept the new one`,
    });
  try {
    const got = (await downloadFile(
      {
        url,
        path: archive,
        label: `built-in probe dataset '${name}'`,
        stage: `download ${CIFAR100_ARCHIVE.file}`,
        fetch: options.fetch,
        checks,
        md5: true,
        advice: `download it yourself, extract it and pass ${join(CIFAR100_ARCHIVE.folder, BUILTIN_PROBE_DATASETS[name].member)}`,
        error: (message, cause) => new ProbeDatasetError(message, { cause }),
      },
      { onProgress: options.onProgress, signal: options.signal },
    ))!;
    // extract train.bin and test.bin
    options.onProgress?.({ stage: `extract ${CIFAR100_ARCHIVE.file}`, done: 0, total: 1, unit: 'file' });
    let tar: Uint8Array;
    try {
      tar = await gunzipFile(archive);
    } catch (err) {
      throw new ProbeDatasetError(
        `${url}: the download is not a gzip file (${(err as Error).message}); not using it`,
      );
    }
    const members = new Map<string, Uint8Array>();
    for (const m of readTar(tar, url)) {
      const base = m.name.split('/').pop() ?? '';
      if (m.type === 'file' && CIFAR100_FILES.includes(base) && !members.has(base)) members.set(base, m.data);
    }
    const record: ArchivePin = {
      archive: CIFAR100_ARCHIVE.file,
      md5: got.md5!,
      sha256: got.sha256,
      members: {},
    };
    for (const f of CIFAR100_FILES) {
      const data = members.get(f);
      if (!data) {
        throw new ProbeDatasetError(
          `${url}: the archive has no ${f} (members found: ${[...members.keys()].join(', ') || 'none of train.bin, test.bin'}); not a CIFAR-100 binary archive`,
        );
      }
      if (data.length === 0 || data.length % (2 + CIFAR_PIXELS) !== 0) {
        throw new ProbeDatasetError(
          `${url}: ${f} in the archive has ${data.length} bytes, not a whole number of CIFAR-100 records of ${2 + CIFAR_PIXELS} bytes; not using it`,
        );
      }
      record.members[f] = { size: data.length, sha256: sha256Hex(data) };
    }
    for (const f of CIFAR100_FILES) await writeFileAtomic(join(dir, f), members.get(f)!);
    // written last, and only for an archive that extracted cleanly: the pin of trust on first use
    await writeFileAtomic(pinPath, `${JSON.stringify(record, null, 2)}\n`);
    options.onProgress?.({ stage: `extract ${CIFAR100_ARCHIVE.file}`, done: 1, total: 1, unit: 'file' });
  } finally {
    await files.rm(archive, { force: true });
  }
}

const BUILTIN_PROBE_NAMES = Object.keys(BUILTIN_PROBE_DATASETS);

/** What a probe source may be, for messages. */
export const EXPECTED = `a folder of images, a folder of class folders (torchvision ImageFolder layout), CIFAR binary files (${formatChoices([...CIFAR10_FILES, ...CIFAR100_FILES])}) or a folder holding them, or one of the built-in names ${formatChoices(BUILTIN_PROBE_NAMES)}`;
