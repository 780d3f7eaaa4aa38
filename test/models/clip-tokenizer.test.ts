import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { clipCleanText, ftfyFixText, htmlUnescape } from '../../src/models/_clip-text-clean.js';
import { ClipTokenizer, tokenizerSpec } from '../../src/models/_clip-tokenizer.js';
import { GOLDEN, NEEDS_SHARED, TOKENIZER_DIR } from './clip-helpers.js';

function loadTokenizer(): ClipTokenizer {
  const json = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer.json'), 'utf8'));
  const cfg = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8'));
  return new ClipTokenizer(json, cfg, (tokenId) =>
    tokenizerSpec('clip', { text_config: { max_position_embeddings: 77 } }, cfg, tokenId, 'test'),
  );
}

describe('OpenAI CLIP text cleaning', () => {
  test('html.unescape as Python', () => {
    assert.equal(htmlUnescape('&amp; &lt;tag&gt; &quot;q&quot; &#65;&#x42;&#X43;'), '& <tag> "q" ABC');
    assert.equal(htmlUnescape('&ampx &amp &copy2024 &unknown; &'), '&x & ©2024 &unknown; &');
    assert.equal(htmlUnescape('&#0; &#128; &#x110000; &#1; &#xD800;'), '\ufffd € \ufffd  \ufffd');
    assert.equal(htmlUnescape('caf&eacute; na&iuml;ve'), 'café naïve');
  });

  test('ftfy subset: ligatures, widths, quotes, controls, entities to a fixed point', () => {
    assert.equal(ftfyFixText('ﬁne ﬂow'), 'fine flow');
    assert.equal(ftfyFixText('ｆｕｌｌｗｉｄｔｈ\u3000ＡＢＣ１２３'), 'fullwidth ABC123');
    assert.equal(ftfyFixText('“curly” ‘single’'), '"curly" \'single\'');
    assert.equal(ftfyFixText('a\u0000b\u200bc\ufeffd\u001b[31mred'), 'ab\u200bcdred');
    assert.equal(ftfyFixText('&amp;amp;amp;'), '&');
    assert.equal(ftfyFixText('P&EACUTE;REZ'), 'PÉREZ');
    assert.equal(ftfyFixText('&lt;b&gt; <b>'), '&lt;b&gt; <b>'); // a '<' turns HTML unescaping off
    assert.equal(ftfyFixText('\u0093quoted\u0094'), '"quoted"'); // C1 controls read as Windows-1252
    assert.equal(ftfyFixText('e\u0301'), 'é'); // NFC
    assert.equal(ftfyFixText('\ud800x'), '\ufffdx');
  });

  test('whitespace and case as whitespace_clean(...).lower()', () => {
    assert.equal(clipCleanText('  Red\t\n  CAR\u00a0\u2003wheel  '), 'red car wheel');
    assert.equal(clipCleanText('&amp;lt;'), '<'); // ftfy, then html.unescape twice
    assert.equal(clipCleanText(''), '');
  });
});

describe('CLIP tokenizer', { skip: NEEDS_SHARED }, () => {
  test('gives the ids of OpenAI clip.tokenize on all reference strings', () => {
    const tok = loadTokenizer();
    const ref = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'reference-ids.json'), 'utf8')) as {
      group: string;
      text: string;
      ids: number[];
    }[];
    assert.ok(ref.length >= 400, `only ${ref.length} reference strings`);
    const differ: string[] = [];
    for (const r of ref) {
      const got = tok.encode(r.text);
      const same = got.ids.length === r.ids.length && got.ids.every((v, i) => v === r.ids[i]);
      if (!same) differ.push(`${JSON.stringify(r.text)}: got ${got.ids} want ${r.ids}`);
    }
    // ftfy's mojibake repair is not reproduced (see _clip-text-clean.ts); no reference string needs it
    assert.deepEqual(differ, [], `${differ.length}/${ref.length} differ`);
  });

  test('the golden concepts tokenize as in the fixture; long ones are cut to 77 keeping the end token', () => {
    const tok = loadTokenizer();
    for (let i = 0; i < GOLDEN.concepts.length; i++) {
      const got = tok.encode(GOLDEN.concepts[i]);
      assert.deepEqual(got.ids, GOLDEN.ids[i], GOLDEN.concepts[i]);
      assert.equal(got.truncated, GOLDEN.ids[i].length === 77 && GOLDEN.concepts[i].length > 200);
    }
    const long = tok.encode('dog '.repeat(200));
    assert.equal(long.ids.length, 77);
    assert.equal(long.ids[0], 49406);
    assert.equal(long.ids[76], 49407);
    assert.ok(long.truncated);
    assert.deepEqual(tok.encode('').ids, [49406, 49407]);
  });

  test('spec from the CLIP config files', () => {
    const tok = loadTokenizer();
    assert.deepEqual(tok.spec, { contextLength: 77, padding: 'longest', padId: 49407, clean: true });
  });
});
