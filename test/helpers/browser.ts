/**
 * Headless Chromium for the report tests and bench: the Debian `chromium` package driven by playwright-core
 * (`npx playwright install` cannot download browsers here). Tests skip with NEEDS_CHROMIUM when it is absent;
 * .ci/run installs it.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CLIP_DISSECT_CHROMIUM ?? '/usr/bin/chromium';
export const NEEDS_CHROMIUM: string | false =
  !existsSync(CHROMIUM) && `needs ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`;

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}
