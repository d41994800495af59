// How long one streamed update costs: the whole buffer is re-rendered per animation frame, so a
// 2,000-token reply must render well inside a frame budget (target: < 50 ms per update).
// Run with `npx vitest bench --run`.
import { bench, describe } from 'vitest';
import { loadEnhancements } from './enhancements';
import { renderMarkdown } from './render';

// Measured with highlighting and KaTeX loaded: the costly case.
await loadEnhancements();

const paragraph =
  'Sorting a list of **n** items by comparison needs $O(n \\log n)$ steps; see [notes](https://example.org). ';
const code = '```rust\nfn main() {\n    let items = vec![3, 1, 2];\n    println!("{items:?}");\n}\n```\n';
const table = '| a | b |\n|---|--:|\n| 1 | 2 |\n| 3 | 4 |\n';
// About 2,000 tokens: ~8,000 characters of mixed Markdown.
const reply = Array.from({ length: 30 }, (_, i) => `## Part ${i}\n\n${paragraph.repeat(2)}\n\n${i % 3 === 0 ? code : table}`).join('\n');

describe('renderMarkdown', () => {
  let salt = 0;
  bench(`cold: a ${reply.length}-character reply (about 2,000 tokens), nothing cached`, () => {
    // Every block differs from the previous run, so nothing comes from the block cache.
    salt += 1;
    renderMarkdown(reply.replaceAll('Part', `Part ${salt}`).replaceAll('items', `items${salt}`).replaceAll('| 1 |', `| ${salt} |`));
  });

  const before = reply.slice(0, -40);
  renderMarkdown(before);
  let step = 0;
  bench('streaming update of the same reply (one more token at the end)', () => {
    step += 1;
    renderMarkdown(`${before} token${step}`);
  });
});
