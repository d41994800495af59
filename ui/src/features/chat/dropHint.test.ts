// The words shown while files hover over the window match where each file will go.
import { describe, expect, it } from 'vitest';
import { describeDrop, isModelPath } from './dropHint';

describe('describeDrop', () => {
  it('names a single picture or document by its file name', () => {
    const hint = describeDrop(['/home/me/Pictures/cat.png']);
    expect(hint.title).toBe('Drop to attach cat.png');
    expect(hint.detail).toBe('It goes with your next message, when you press Send.');
  });

  it('counts several files and says they wait for Send', () => {
    const hint = describeDrop(['/a/report.pdf', '/a/cat.png', '/a/notes.txt']);
    expect(hint.title).toBe('Drop to attach 3 files');
    expect(hint.detail).toBe('They go with your next message, when you press Send.');
  });

  it('says a model file goes to the models, whatever the case of its extension', () => {
    expect(describeDrop(['/m/Llama-4-Scout.GGUF']).title).toBe('Drop to add Llama-4-Scout.GGUF to your models');
    expect(describeDrop(['/m/a.gguf', '/m/b.gguf']).title).toBe('Drop to add 2 models');
  });

  it('splits a mixed drop between the message and the models', () => {
    const hint = describeDrop(['/m/a.gguf', '/d/report.pdf']);
    expect(hint.title).toBe('Drop to attach 1 file and add 1 model');
    expect(hint.detail).toMatch(/\.gguf/);
  });

  it('explains both destinations when the platform gives no paths before the drop', () => {
    const hint = describeDrop([]);
    expect(hint.title).toBe('Drop to attach');
    expect(hint.detail).toMatch(/next message.*\.gguf/);
  });

  it('tells model files by the extension only', () => {
    expect(isModelPath('/x/model.gguf')).toBe(true);
    expect(isModelPath('/x/model.gguf.part')).toBe(false);
    expect(isModelPath('/x/gguf-notes.txt')).toBe(false);
  });
});
