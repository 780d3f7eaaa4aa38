import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseClassNames, parseCsv, parseMethodLabels } from '../../src/data/labels-files.js';

const PEERS = fileURLToPath(new URL('../../../../shared/data/peer-results/', import.meta.url));
const IMAGENET = fileURLToPath(
  new URL('../../../../shared/data/concepts/imagenet_labels.txt', import.meta.url),
);
const HAVE_SHARED = existsSync(PEERS) && existsSync(IMAGENET);

describe('parseCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line ends; CRLF; a BOM; no final line end', () => {
    assert.deepEqual(parseCsv('\uFEFFa,b\r\n1,"x, ""y"""\n2,"multi\nline"'), [
      ['a', 'b'],
      ['1', 'x, "y"'],
      ['2', 'multi\nline'],
    ]);
    assert.deepEqual(parseCsv('a,,c\n'), [['a', '', 'c']]);
    assert.throws(() => parseCsv('a,"b\n', 'f.csv'), /f\.csv: a quoted field is not closed/);
    assert.throws(() => parseCsv('a,"b"c\n', 'f.csv'), /f\.csv: line 1: text after a closing quote/);
  });
});

describe('parseClassNames', () => {
  it('line i is the class of unit i, whole; one final line end is allowed', () => {
    assert.deepEqual(parseClassNames('tench, Tinca tinca\r\ngoldfish\n', 'gt.txt'), [
      'tench, Tinca tinca',
      'goldfish',
    ]);
    assert.throws(() => parseClassNames('a\n\nb', 'gt.txt'), /gt\.txt: line 2 is blank/);
    assert.throws(() => parseClassNames('', 'gt.txt'), /gt\.txt: no class names/);
  });
});

describe('parseMethodLabels', () => {
  it('NetDissect tally: units 1-based, any row order, the label column', () => {
    const t = 'unit,category,label,score\n2,scene,heliport-s,0.2\n1,texture,scaly,0.1\n';
    assert.deepEqual(parseMethodLabels(t, 'tally.csv', 'fc', 2), {
      source: 'tally.csv',
      layout: 'netdissect',
      labels: ['scaly', 'heliport-s'],
    });
    assert.throws(
      () => parseMethodLabels(t, 'tally.csv', 'fc', 3),
      /1 of the layer's 3 units have no label \(first: unit 3, 1-based\)/,
    );
    assert.throws(
      () => parseMethodLabels('unit,category,label,score\n0,a,b,1\n', 't.csv', 'fc', 2),
      /unit "0" is not a 1-based unit of a layer of 2 neurons \(1…2\)/,
    );
  });
  it('layer,unit,description (MILAN, descriptions.csv): the layer rows, sorted by unit', () => {
    const t = 'layer,unit,description,similarity\nfc,1,"b, c",0.5\nconv1,0,x,1\nfc,0,a,0.1\n';
    assert.deepEqual(parseMethodLabels(t, 'd.csv', 'fc', 2).labels, ['a', 'b, c']);
    assert.throws(
      () => parseMethodLabels(t, 'd.csv', 'layer4', 2),
      /no rows of layer 'layer4'; its layers are 'fc', 'conv1'/,
    );
    assert.throws(
      () => parseMethodLabels('layer,unit,description\nfc,0,a\nfc,0,b\n', 'd.csv', 'fc', 1),
      /unit 0 appears more than once/,
    );
    assert.throws(
      () => parseMethodLabels('x,y\n', 'd.csv', 'fc', 1),
      /columns 'x', 'y' are not a known layout; accepted layouts: NetDissect tally\.csv \(columns unit,category,label,score,…; units 1-based\) or MILAN/,
    );
  });
  it("reads the paper's peer results of ResNet-50 fc", {
    skip: !HAVE_SHARED && 'needs ../shared/data',
  }, () => {
    const classes = parseClassNames(readFileSync(IMAGENET, 'utf8'), IMAGENET);
    assert.equal(classes.length, 1000);
    assert.equal(classes[0], 'tench, Tinca tinca');
    const nd = parseMethodLabels(
      readFileSync(`${PEERS}NetDissect_results/resnet50_imagenet_fc.csv`, 'utf8'),
      'nd',
      'fc',
      1000,
    );
    assert.equal(nd.layout, 'netdissect');
    assert.deepEqual(nd.labels.slice(0, 2), ['scaly', 'smeared']);
    const milan = parseMethodLabels(
      readFileSync(`${PEERS}MILAN_results/m_base_resnet50_imagenet.csv`, 'utf8'),
      'm',
      'fc',
      1000,
    );
    assert.deepEqual(milan.labels.slice(0, 2), ['Living things', 'Fish in pictures']);
  });
});
