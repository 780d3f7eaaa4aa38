/**
 * The report page (index.html): an HTML shell with the page's stylesheet and script inlined, so that the
 * page is one file that works from file:// and offline (a Content-Security-Policy forbids any request to a
 * network). The stylesheet and the script are real files, type-checked (src/report/page/tsconfig.json,
 * `npm run lint`) and linted: src/report/page/report.css and report.js. They are read from the package's
 * src/report/page/ folder (package.json `files` ships it), once per process; the data comes from `data.js`
 * beside index.html (see html-report.ts).
 */
import { platform } from '#platform';
import { describeFsError } from '../io/files.js';
import { ClipDissectError } from '../numeric/errors.js';

/** src/report/page/ of the package, from this module (dist/src/report/). */
const PAGE_DIR = new URL('../../../src/report/page/', import.meta.url);

let page: Promise<string> | undefined;

async function pageFile(name: string): Promise<string> {
  const path = platform.paths.fromFileUrl(new URL(name, PAGE_DIR));
  const text = await platform.files.readText(path).catch((e: Error) => {
    throw new ClipDissectError(
      'ERR_REPORT_PAGE',
      `${path}: cannot read the report page's ${name} (${describeFsError(e)}); the clip-dissect installation is incomplete: reinstall it`,
      { cause: e },
    );
  });
  // inlined into <style> / <script>: a closing tag inside would end the element early
  if (/<\/(style|script)/i.test(text))
    throw new ClipDissectError('ERR_REPORT_PAGE', `${path}: contains a </style> or </script> tag`);
  return text;
}

async function build(): Promise<string> {
  const [css, js] = await Promise.all([pageFile('report.css'), pageFile('report.js')]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self' 'unsafe-inline' file:; style-src 'unsafe-inline'; img-src 'self' file: data:">
<meta name="referrer" content="no-referrer">
<title>CLIP-Dissect report</title>
<style>
${css}</style>
</head>
<body>
<div id="app"><p style="padding:24px">Loading…</p></div>
<script src="data.js"></script>
<script>
${js}</script>
</body>
</html>
`;
}

/**
 * index.html of the report. Errors: ClipDissectError 'ERR_REPORT_PAGE' naming the file when the page's
 * stylesheet or script is missing from the installation.
 */
export function reportPageHtml(): Promise<string> {
  page ??= build().catch((e: unknown) => {
    page = undefined;
    throw e;
  });
  return page;
}
