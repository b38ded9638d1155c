/** StreamedText: rendered when read, once, chunk by chunk; plans holding one stay comparable data. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamedText } from '../../src/render/streamed-text.js';

function counting() {
  const calls: number[] = [];
  const render = function* (lines: number) {
    calls.push(lines);
    for (let i = 0; i < lines; i++) yield `line ${i}\n`;
  };
  return { calls, render };
}

describe('StreamedText', () => {
  it('renders nothing until read, then chunk by chunk as the chunks are taken', () => {
    const { calls, render } = counting();
    const text = StreamedText.rendered(render, [3], { empty: false, estimatedLength: 21 });
    assert.deepEqual(calls, []);
    const chunks = text.chunks();
    assert.deepEqual(chunks.next(), { value: 'line 0\n', done: false });
    assert.deepEqual(calls, [3]);
    assert.deepEqual([...chunks], ['line 1\n', 'line 2\n']);
  });

  it('text() after the chunks were written gives what they gave, without rendering again', () => {
    const { calls, render } = counting();
    const text = StreamedText.rendered(render, [2], { empty: false, estimatedLength: 14 });
    assert.equal([...text.chunks()].join(''), 'line 0\nline 1\n');
    assert.equal(text.text(), 'line 0\nline 1\n');
    assert.deepEqual([...text.chunks()], ['line 0\nline 1\n']);
    assert.deepEqual(calls, [2]);
  });

  it('chunks abandoned half way (the child stopped reading) leave text() whole', () => {
    const { calls, render } = counting();
    const text = StreamedText.rendered(render, [3], { empty: false, estimatedLength: 21 });
    for (const chunk of text.chunks()) if (chunk === 'line 0\n') break;
    assert.equal(text.text(), 'line 0\nline 1\nline 2\n');
    assert.deepEqual(calls, [3, 3]);
  });

  it('of(text) is already rendered; empty and its length are known', () => {
    assert.equal(StreamedText.of('').empty, true);
    assert.deepEqual([...StreamedText.of('').chunks()], []);
    const text = StreamedText.of('a\nb\n');
    assert.equal(text.empty, false);
    assert.equal(text.estimatedLength, 4);
    assert.equal(text.text(), 'a\nb\n');
  });

  it('two made from the same renderer and arguments are deep-equal; other arguments are not', () => {
    const { render } = counting();
    const size = { empty: false, estimatedLength: 7 };
    assert.deepEqual(StreamedText.rendered(render, [1], size), StreamedText.rendered(render, [1], size));
    assert.notDeepEqual(StreamedText.rendered(render, [1], size), StreamedText.rendered(render, [2], size));
    assert.deepEqual(StreamedText.of('x\n'), StreamedText.of('x\n'));
  });
});
