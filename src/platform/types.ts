/**
 * The ports: the small interfaces through which the platform-neutral core (numeric, io, data, compute,
 * models, pipeline, report) reaches files, images, hashing, worker threads and the host. The core imports
 * `platform` from `#platform` (package.json "imports"), which resolves to the Node adapter in `./node/`; a
 * browser build maps `#platform` to its own adapter (OPFS, createImageBitmap, Web Workers) implementing the
 * same interfaces. Nothing here names a Node type: bytes are Uint8Array, times are milliseconds.
 *
 * Errors from `files` carry the POSIX-style `code` the core tests for ('ENOENT', 'EEXIST', 'EACCES',
 * 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EXDEV', 'ELOOP', 'EAGAIN', ...); an adapter for another platform must
 * raise the same codes.
 */

/** What `stat` tells about a file. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Modification time in nanoseconds where the platform has it (else mtimeMs × 1e6). */
  mtimeNs: bigint;
  /** Inode and device numbers (0 where the platform has none). */
  ino: number;
  dev: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  /** Status-change time in nanoseconds where the platform has it (else ctimeMs × 1e6). */
  ctimeNs: bigint;
}

/** One entry of a folder listing. */
export interface DirEntry {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * How to open a file: 'r' read; 'r-nonblocking' read without blocking on a FIFO or device (so the core can
 * stat what it opened before reading); 'w' create or truncate; 'wx' create, failing with EEXIST if it exists;
 * 'a' append.
 */
export type OpenMode = 'r' | 'r-nonblocking' | 'w' | 'wx' | 'a';

/** An open file. Always `close()` it in a finally block. */
export interface OpenFile {
  /** Reads up to `length` bytes at `position` (null: the current position) into `buffer` at `offset`; returns the count read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<number>;
  /** Writes `length` bytes of `buffer` from `offset`; returns the count written (may be fewer: loop). */
  write(buffer: Uint8Array, offset?: number, length?: number): Promise<number>;
  /** Writes the whole text as UTF-8. */
  writeText(text: string): Promise<void>;
  stat(): Promise<FileStat>;
  /** Flushes the data to the device. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** The file system: promise-based, paths as strings. */
export interface FileSystem {
  stat(path: string): Promise<FileStat>;
  /** Like stat, but describes a symbolic link itself. */
  lstat(path: string): Promise<FileStat>;
  readFile(path: string): Promise<Uint8Array>;
  readText(path: string): Promise<string>;
  /** Reads a file bundled with the code (a WASM module, a page asset, package.json), synchronously. */
  readAssetSync(url: URL): Uint8Array;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  readdir(path: string): Promise<DirEntry[]>;
  /** Creates a folder (and its parents with recursive); returns the first folder it created, if any. */
  mkdir(path: string, options?: { recursive?: boolean }): Promise<string | undefined>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  /** Removes an empty folder. */
  rmdir(path: string): Promise<void>;
  /** Removes a file synchronously (only for cleanup while the process exits). */
  removeSync(path: string): void;
  /** Creates a hard link; fails with EEXIST when `newPath` exists (an exclusive create). */
  link(existingPath: string, newPath: string): Promise<void>;
  realpath(path: string): Promise<string>;
  utimes(path: string, atime: Date, mtime: Date): Promise<void>;
  /** Throws (EACCES, EROFS, ...) unless the folder can be written and entered. */
  checkWritable(path: string): Promise<void>;
  open(path: string, mode: OpenMode): Promise<OpenFile>;
  /** Streams a file's bytes in chunks of about `chunkBytes`. */
  readChunks(path: string, chunkBytes?: number): AsyncIterable<Uint8Array>;
  /**
   * Lists a folder with each name's bytes as stored (a name that is not valid UTF-8 comes back in `name` with
   * U+FFFD replacements and is told apart by `nameIsUtf8`).
   */
  readdirRaw(path: string): Promise<RawDirEntry[]>;
}

/** One entry of {@link FileSystem.readdirRaw}. */
export interface RawDirEntry extends DirEntry {
  /** The name's bytes as the file system stores them. */
  readonly nameBytes: Uint8Array;
  /** Whether `nameBytes` is valid UTF-8 (then `name` is exactly the name). */
  readonly nameIsUtf8: boolean;
  /** Whether the entry is a folder, following a symbolic link (false for a broken link or a failing stat). */
  isDirectoryFollowingLinks(): Promise<boolean>;
}

/** Path arithmetic (POSIX-like; the Node adapter uses the host's rules). */
export interface Paths {
  readonly sep: string;
  join(...parts: string[]): string;
  resolve(...parts: string[]): string;
  relative(from: string, to: string): string;
  dirname(path: string): string;
  basename(path: string, suffix?: string): string;
  extname(path: string): string;
  isAbsolute(path: string): boolean;
  normalize(path: string): string;
  /** The path of a file: URL (assets bundled with the code). */
  fromFileUrl(url: URL): string;
}

/** What an image file's header says, read without decoding the pixels. */
export interface ImageHeader {
  format: string | undefined;
  width: number | undefined;
  height: number | undefined;
  /** The colour space as the decoder names it ('srgb', 'b-w', 'cmyk', 'grey16', 'rgb16', ...). */
  space: string | undefined;
  channels: number | undefined;
  hasAlpha: boolean;
  /** Sample depth ('uchar', 'ushort', ...). */
  depth: string | undefined;
  /** Palette (colour-mapped) image. */
  isPalette: boolean;
  /** Bits per sample where the header gives it. */
  bitsPerSample: number | undefined;
}

/**
 * How to decode: 'native8' the decoder's 8-bit output in the file's own space (sRGB(A) or B-W(A)), ICC
 * profiles ignored; 'grey16' 16-bit gray in the host's byte order; 'cmyk' the raw C, M, Y, K samples.
 */
export type RawDecodeMode = 'native8' | 'grey16' | 'cmyk';

/** Interleaved samples as the decoder gave them. */
export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** Image decoding and encoding. Decoding fails on the first corrupt byte ('failOn: error'). */
export interface ImageCodec {
  /** The decoder's components and versions, for the record of a run (e.g. { sharp, libvips }). */
  versions(): Record<string, string>;
  /** The formats it decodes ('jpeg', 'png', 'webp', ...). */
  inputFormats(): string[];
  header(bytes: Uint8Array): Promise<ImageHeader>;
  decodeRaw(bytes: Uint8Array, mode: RawDecodeMode): Promise<RawPixels>;
  /**
   * A size×size WebP centre crop ('cover') of an encoded image (shrunk while loading) or of 8-bit RGB pixels.
   * EXIF orientation is not applied.
   */
  thumbnailWebp(
    source: Uint8Array | { data: Uint8Array; width: number; height: number },
    size: number,
    quality: number,
  ): Promise<Uint8Array>;
}

/** An incremental SHA-256. */
export interface Sha256 {
  update(bytes: Uint8Array): Sha256;
  /** The digest as 64 lowercase hex digits. */
  digestHex(): string;
}

export interface Hashing {
  sha256(): Sha256;
  /** An incremental MD5 (same shape as Sha256), only to check checksums that publishers give as MD5. */
  md5(): Sha256;
}

/** A worker as its creator sees it. */
export interface WorkerHandle {
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Called when the worker stops, with its exit code. */
  onExit(listener: (code: number) => void): void;
  terminate(): Promise<void>;
}

/** The creator as a worker sees it. */
export interface ParentChannel {
  /** The data given to `spawn`. */
  readonly data: unknown;
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Posts `message`, moving the `transfer` buffers to the creator instead of copying them (they become empty here). */
  transferMessage(message: unknown, transfer: ArrayBuffer[]): void;
}

export interface Workers {
  /** Starts a worker running the module at `script` with `data` (structured-cloned; shared memory is shared). */
  spawn(script: URL, data: unknown): WorkerHandle;
  /** In a worker: the channel to its creator; on the main thread: undefined. */
  parent(): ParentChannel | undefined;
}

/** The machine and process the code runs in. */
export interface Host {
  /** How many threads can usefully run at once. */
  availableParallelism(): number;
  /** The CPU architecture ('x64', 'arm64', 'wasm32', ...). */
  readonly arch: string;
  /** The CPU's feature flags (lower case, e.g. 'avx2', 'avx512_vnni'), empty where unknown. */
  cpuFlags(): ReadonlySet<string>;
  /** An environment variable, or undefined. */
  env(name: string): string | undefined;
  /** The user's home folder (for the default cache root). */
  homedir(): string;
  hostname(): string;
  readonly pid: number;
  cwd(): string;
  /** The JavaScript runtime's name and version as results record them, e.g. { node: 'v20.20.2' }. */
  readonly runtimeVersions: Readonly<Record<string, string>>;
  /** Whether a process with this id is alive on this host. */
  isProcessAlive(pid: number): boolean;
  /** Runs `listener` synchronously when the process exits; returns a function that removes it. */
  onExit(listener: () => void): () => void;
}

/** Everything the core needs from the platform. */
export interface Platform {
  /** 'node', 'browser', ... */
  readonly name: string;
  readonly files: FileSystem;
  readonly paths: Paths;
  readonly images: ImageCodec;
  readonly hashing: Hashing;
  readonly workers: Workers;
  readonly host: Host;
}
