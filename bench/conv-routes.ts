/**
 * Prints the routing table of the trunk's convolutions from the planner itself (src/model/conv-routes.ts,
 * src/kernels/conv-plan.ts): each conv x pass x frozen / trained, on a software adapter and on a GPU, for
 * training (a batch of 8) and inspection (one image) at a size. Markdown, as DESIGN.md shows it. No device
 * is needed: the planner is pure.
 *
 *   npx tsx bench/conv-routes.ts [--size 256] [--batches 8,1] [--binding 134217728]
 */
import { parseArgs } from 'node:util';
import { RULES, type AdapterCaps, type ConvPlan } from '../src/kernels/conv-plan.js';
import { routingTable } from '../src/model/conv-routes.js';

const { values: a } = parseArgs({ options: { size: { type: 'string', default: '256' }, batches: { type: 'string', default: '8,1' }, binding: { type: 'string', default: String(2 ** 27) } } });
const size = Number(a.size);
const binding = Number(a.binding);
const adapters: Array<[string, AdapterCaps]> = [
  ['software adapter (lavapipe, SwiftShader)', { isSoftware: true, maxStorageBufferBindingSize: binding }],
  ['GPU', { isSoftware: false, maxStorageBufferBindingSize: binding }],
];

const cell = (p: ConvPlan, N: number) => {
  if (p.algorithm === 'direct') return p.splits > 1 ? `direct, split ${p.splits}` : 'direct';
  return p.imagesPerChunk < N ? `${p.algorithm}, ${p.imagesPerChunk} a chunk` : p.algorithm;
};

const lines: string[] = [];
for (const batch of a.batches!.split(',').map(Number)) {
  for (const [name, caps] of adapters) {
    lines.push(`**${name}, batch ${batch} of ${size} x ${size}** (binding limit ${(binding / 2 ** 20).toFixed(0)} MiB)`, '');
    lines.push('| conv | shape | frozen forward | forward | backward-data | weight gradient |', '|---|---|---|---|---|---|');
    const rows = routingTable(caps, size, batch);
    for (let i = 0; i < rows.length; i += 4) {
      const [frozen, forward, data, weight] = rows.slice(i, i + 4);
      const { conv, g } = frozen;
      lines.push(`| ${conv.conv} | ${g.Cin}->${g.Cout} ${g.KH}x${g.KW}/${g.stride} on ${g.H}x${g.W} | ${cell(frozen.plan, batch)} | ${cell(forward.plan, batch)} | ${cell(data.plan, batch)} | ${cell(weight.plan, batch)} |`);
    }
    lines.push('');
  }
}
lines.push('Rules (src/kernels/conv-plan.ts, RULES):', '');
for (const [name, r] of Object.entries(RULES)) lines.push(`- \`${name}\` (${typeof r.value === 'number' && r.value > 4096 ? `${r.value}` : String(r.value)}): ${r.why}`);
console.log(lines.join('\n'));
