// What the window says while files from outside are dragged over it, so a user knows before
// letting go where each file will go (the same rule as `routeDroppedFiles` in App.svelte:
// `.gguf` files go to the model library, everything else goes with the next message).
import { fileName } from './attachments.svelte';

export interface DropHintText {
  title: string;
  detail: string;
}

export function isModelPath(path: string): boolean {
  return path.toLowerCase().endsWith('.gguf');
}

function count(n: number, one: string, many: string): string {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

/** The hint for the dragged `paths` (empty when the platform does not say them before the drop). */
export function describeDrop(paths: string[]): DropHintText {
  const models = paths.filter(isModelPath);
  const files = paths.filter((path) => !isModelPath(path));
  const onlyFile = files.length === 1 ? files[0] : undefined;
  const onlyModel = models.length === 1 ? models[0] : undefined;
  if (paths.length === 0) {
    return {
      title: 'Drop to attach',
      detail: 'Pictures and documents go with your next message; .gguf model files go to your models.',
    };
  }
  if (models.length === 0) {
    return {
      title: onlyFile !== undefined ? `Drop to attach ${fileName(onlyFile)}` : `Drop to attach ${count(files.length, 'file', 'files')}`,
      detail: `${files.length === 1 ? 'It goes' : 'They go'} with your next message, when you press Send.`,
    };
  }
  if (files.length === 0) {
    return {
      title: onlyModel !== undefined ? `Drop to add ${fileName(onlyModel)} to your models` : `Drop to add ${count(models.length, 'model', 'models')}`,
      detail: 'Cria checks the file and loads it when it fits this computer.',
    };
  }
  return {
    title: `Drop to attach ${count(files.length, 'file', 'files')} and add ${count(models.length, 'model', 'models')}`,
    detail: 'Pictures and documents go with your next message; .gguf model files go to your models.',
  };
}
