// The model library as the window shows it: what is installed, what is loaded, and the
// actions on them. Errors become a notice; nothing here throws at the components.
import {
  CriaError,
  getLoadedModel,
  importModel,
  listModels,
  onModelLoadProgress,
  removeModel,
  selectModel,
  type LoadedModelDto,
  type ModelSummaryDto,
} from '../../ipc';
import { ModelCatalog } from './catalog.svelte';

export class ModelLibrary {
  models = $state<ModelSummaryDto[]>([]);
  loaded = $state<LoadedModelDto | null>(null);
  /** What is happening now ("Loading …"), for a progress line. */
  busy = $state<string | null>(null);
  notice = $state<string | null>(null);
  /** How far the model being loaded is (0 to 1), whatever started the load; null: none runs. */
  loadFraction = $state<number | null>(null);
  /** The downloadable catalog; a finished download shows up in `models`. */
  readonly catalog = new ModelCatalog(async () => {
    this.models = await listModels();
  });

  get active(): ModelSummaryDto | undefined {
    return this.models.find((model) => model.active);
  }

  /** Starts following model loads; resolves to a function that stops. */
  followLoads(): Promise<() => void> {
    return onModelLoadProgress((fraction) => {
      this.loadFraction = fraction;
    });
  }

  async refresh(): Promise<void> {
    await this.run(null, async () => {
      this.models = await listModels();
      this.loaded = await getLoadedModel();
    });
  }

  /** Imports a GGUF by path and, when nothing is active yet, loads it right away. */
  async import(path: string): Promise<boolean> {
    const trimmed = path.trim();
    if (trimmed === '') return false;
    return this.run(`Checking ${fileName(trimmed)}…`, async () => {
      const model = await importModel(trimmed);
      this.models = await listModels();
      if (!this.active) await this.load(model.id);
    });
  }

  async use(id: string): Promise<boolean> {
    return this.run(this.loadingLabel(id), () => this.load(id));
  }

  async remove(id: string): Promise<boolean> {
    return this.run(null, async () => {
      await removeModel(id);
      this.models = await listModels();
      this.loaded = await getLoadedModel();
    });
  }

  private async load(id: string): Promise<void> {
    this.busy = this.loadingLabel(id);
    this.loaded = await selectModel(id);
    this.models = await listModels();
  }

  private loadingLabel(id: string): string {
    const name = this.models.find((model) => model.id === id)?.name;
    return name ? `Loading ${name}…` : 'Loading the model…';
  }

  private async run(busy: string | null, work: () => Promise<void>): Promise<boolean> {
    this.busy = busy;
    this.notice = null;
    try {
      await work();
      return true;
    } catch (error) {
      this.notice = error instanceof CriaError ? error.message : String(error);
      return false;
    } finally {
      this.busy = null;
    }
  }
}

function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
