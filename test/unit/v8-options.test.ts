/** The single executable's capture options: only those this node accepts are kept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptedV8Options, CAPTURE_V8_OPTIONS, nodeAccepts } from '../../src/cli/v8-options.js';

test('keeps the options the node accepts, in order, as one string', () => {
  const asked: string[] = [];
  const accepts = (option: string) => {
    asked.push(option);
    return option !== '--renamed';
  };
  assert.equal(acceptedV8Options(['--a', '--renamed', '--b'], accepts), '--a --b');
  assert.deepEqual(asked, ['--a', '--renamed', '--b']);
  assert.equal(acceptedV8Options(['--renamed'], accepts), '');
});

test('this node accepts the capture options and refuses an unknown one', () => {
  const accepts = nodeAccepts(process.execPath);
  for (const option of CAPTURE_V8_OPTIONS) assert.equal(accepts(option), true, option);
  assert.equal(accepts('--no-such-v8-option-meshcap'), false);
});
