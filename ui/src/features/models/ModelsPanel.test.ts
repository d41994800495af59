import { cleanup, fireEvent, render, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CatalogEntryDto, EngineSettingsDto, LoadedModelDto, ModelSummaryDto } from '../../ipc';
import { clearMocks, emitBackendEvent, emitDownloadEvent, mockCommands } from '../../ipc/testing';
import { formatBytes, formatEta } from './catalog.svelte';
import { ModelLibrary } from './library.svelte';
import ModelsPanel from './ModelsPanel.svelte';

/** Generous: the CI machine is shared and rendering can stall for a moment under load. */
function waitFor<T>(check: () => T | Promise<T>): Promise<T> {
  return vi.waitFor(check, { timeout: 5000 });
}

afterEach(() => {
  cleanup();
  clearMocks();
});

const automatic: EngineSettingsDto = { contextSize: null, threads: null, gpuLayers: null };

const scout: CatalogEntryDto = {
  id: 'llama-4-scout-q4-k-m',
  name: 'Llama 4 Scout 17B-16E Instruct',
  quantization: 'Q4_K_M',
  sizeBytes: 65_400_000_000,
  vision: true,
  note: null,
  verdict: 'does not fit',
  verdictReason: 'needs 62 GB of memory; this computer has 16 GB',
  downloaded: false,
};

const small: CatalogEntryDto = {
  id: 'tiny-q8',
  name: 'Tiny Llama',
  quantization: 'Q8_0',
  sizeBytes: 1_200_000_000,
  vision: false,
  note: 'For quick tests.',
  verdict: 'CPU only',
  verdictReason: 'no GPU was found; runs on 8 CPU threads',
  downloaded: false,
};

function summary(entry: CatalogEntryDto): ModelSummaryDto {
  return {
    id: entry.id,
    name: entry.name,
    architecture: 'llama4',
    sizeBytes: entry.sizeBytes,
    quantization: entry.quantization,
    contextLength: 8192,
    vision: entry.vision,
    verdict: entry.verdict,
    verdictReason: entry.verdictReason,
    active: false,
  };
}

interface Download {
  args: Record<string, unknown>;
  resolve: (model: ModelSummaryDto) => void;
  reject: (error: unknown) => void;
}

/** Mocks the shell; downloads stay pending until a test settles them. */
function setup() {
  const calls: [string, Record<string, unknown>][] = [];
  const downloads: Download[] = [];
  let library: ModelSummaryDto[] = [];
  let loadModel: ((value: unknown) => void) | null = null;
  mockCommands((command, args) => {
    calls.push([command, args]);
    switch (command) {
      case 'list_catalog':
        return [scout, small];
      case 'list_models':
        return library;
      case 'get_loaded_model':
        return null;
      case 'download_model':
        return new Promise((resolve, reject) => {
          downloads.push({
            args,
            resolve: (model) => {
              library = [model];
              resolve(model);
            },
            reject,
          });
        });
      case 'cancel_download':
        return true;
      case 'select_model':
        return new Promise((resolve) => (loadModel = resolve));
      case 'get_engine_settings':
        return automatic;
      case 'list_devices':
        return [];
      default:
        throw new Error(`unexpected command ${command}`);
    }
  });
  const modelLibrary = new ModelLibrary();
  const view = render(ModelsPanel, { library: modelLibrary, onClose: vi.fn() });
  const entry = async (name: string) => {
    const item = await waitFor(() => {
      const found = view
        .getAllByTestId('catalog-entry')
        .find((element) => element.textContent?.includes(name));
      if (!found) throw new Error(`no entry ${name}`);
      return found;
    });
    return within(item);
  };
  /** The `index`th download the panel started, once it has. */
  const download = (index: number) =>
    waitFor(() => {
      const started = downloads[index];
      if (!started) throw new Error(`download ${index} has not started`);
      return started;
    });
  return { calls, download, view, entry, finishLoading: () => loadModel?.({}) };
}

describe('the catalog in the models panel', () => {
  it('lists each entry with its size, vision and the fit verdict with its reason', async () => {
    const { entry } = setup();
    const big = await entry('Scout');
    expect(big.getByText(/Q4_K_M · 65\.4 GB · vision: yes/)).toBeTruthy();
    const badge = big.getByText('does not fit');
    expect(badge.getAttribute('title')).toBe(scout.verdictReason);
    expect(big.getByText(scout.verdictReason)).toBeTruthy();
    const tiny = await entry('Tiny Llama');
    expect(tiny.getByText(/Q8_0 · 1\.2 GB · vision: no/)).toBeTruthy();
    expect(tiny.getByText('For quick tests.')).toBeTruthy();
  });

  it('shows bytes, rate and ETA while downloading, then offers the model and shows it loading', async () => {
    const { calls, download, entry, view, finishLoading } = setup();
    const tiny = await entry('Tiny Llama');
    await fireEvent.click(tiny.getByRole('button', { name: 'Download Tiny Llama Q8_0' }));
    const first = await download(0);
    expect(first.args).toMatchObject({ id: 'tiny-q8', withVision: false });

    emitDownloadEvent(first.args, { event: 'started', data: { fileName: 'tiny.gguf', resumeFrom: 0 } });
    emitDownloadEvent(first.args, {
      event: 'progress',
      data: {
        fileIndex: 0,
        fileCount: 1,
        fileName: 'tiny.gguf',
        jobBytes: 300_000_000,
        jobTotal: 1_200_000_000,
        bytesPerSecond: 12_000_000,
        etaSeconds: 75,
      },
    });
    await waitFor(() =>
      expect(tiny.getByTestId('download-progress').textContent).toContain('300 MB of 1.2 GB · 12 MB/s · 1 min 15 s left · tiny.gguf'),
    );
    const bar = tiny.getByRole('progressbar', { name: 'Downloading Tiny Llama Q8_0' }) as HTMLProgressElement;
    expect(bar.value / bar.max).toBeCloseTo(0.25);
    expect(tiny.queryByTestId('download-resumed')).toBeNull();

    first.resolve(summary(small));
    const use = await waitFor(() => tiny.getByRole('button', { name: 'Use this model' }));
    // The finished download is in the library list above the catalog.
    await waitFor(() => expect(view.getByRole('button', { name: 'Remove Tiny Llama from the library' })).toBeTruthy());

    await fireEvent.click(use);
    await waitFor(() => expect(view.getByTestId('models-busy').textContent).toContain('Loading Tiny Llama…'));
    const loading = within(view.getByTestId('models-busy')).getByRole('progressbar') as HTMLProgressElement;
    expect(loading.hasAttribute('value')).toBe(false);
    expect(calls).toContainEqual(['select_model', { id: 'tiny-q8' }]);
    finishLoading();
    await waitFor(() => expect(view.queryByTestId('models-busy')).toBeNull());
  });

  it('cancels a download and resumes it, saying from where', async () => {
    const { calls, download, entry } = setup();
    const big = await entry('Scout');
    await fireEvent.click(big.getByRole('button', { name: /^Download Llama 4 Scout/ }));
    const first = await download(0);
    expect(first.args).toMatchObject({ id: scout.id, withVision: true });
    emitDownloadEvent(first.args, {
      event: 'progress',
      data: {
        fileIndex: 0,
        fileCount: 2,
        fileName: 'scout.gguf',
        jobBytes: 1_234_000_000,
        jobTotal: 65_400_000_000,
        bytesPerSecond: 50_000_000,
        etaSeconds: 1283,
      },
    });
    await fireEvent.click(await waitFor(() => big.getByRole('button', { name: /^Cancel downloading/ })));
    expect(calls).toContainEqual(['cancel_download', { id: scout.id }]);
    first.reject({ kind: 'CANCELLED', message: 'the download was cancelled; the partial file is kept' });
    await waitFor(() => expect(big.getByRole('status').textContent).toContain('Cancelled at 1.2 GB'));

    await fireEvent.click(big.getByRole('button', { name: /^Resume Llama 4 Scout/ }));
    const second = await download(1);
    emitDownloadEvent(second.args, { event: 'started', data: { fileName: 'scout.gguf', resumeFrom: 1_234_000_000 } });
    await waitFor(() => expect(big.getByTestId('download-resumed').textContent).toBe('Resuming from 1.2 GB'));
    expect(big.getByTestId('download-progress').textContent).toContain('1.2 GB of 65.4 GB');
    // The projector's own start does not hide how much of the job was resumed.
    emitDownloadEvent(second.args, { event: 'started', data: { fileName: 'mmproj.gguf', resumeFrom: 0 } });
    await waitFor(() => expect(big.getByTestId('download-progress').textContent).toContain('mmproj.gguf'));
    expect(big.getByTestId('download-resumed').textContent).toBe('Resuming from 1.2 GB');
  });

  it("shows the core's message when a download fails, and can try again", async () => {
    const { download, entry } = setup();
    const tiny = await entry('Tiny Llama');
    await fireEvent.click(tiny.getByRole('button', { name: 'Download Tiny Llama Q8_0' }));
    const first = await download(0);
    const message = 'tiny.gguf: the sha256 does not match the published one; the file was deleted';
    first.reject({ kind: 'MODEL', message });
    await waitFor(() => expect(tiny.getByRole('alert').textContent).toBe(message));
    await fireEvent.click(tiny.getByRole('button', { name: 'Try again Tiny Llama Q8_0' }));
    await download(1);
    expect(tiny.queryByRole('alert')).toBeNull();
  });

  it('says why the catalog could not be listed', async () => {
    mockCommands((command) => {
      if (command === 'list_catalog') throw { kind: 'MODEL', message: 'the bundled catalog is damaged' };
      if (command === 'list_models') return [];
      if (command === 'get_engine_settings') return automatic;
      if (command === 'list_devices') return [];
      return null;
    });
    const view = render(ModelsPanel, { library: new ModelLibrary(), onClose: vi.fn() });
    await waitFor(() => expect(view.getByRole('alert').textContent).toBe('the bundled catalog is damaged'));
  });
});

describe('engine settings', () => {
  const loaded: LoadedModelDto = {
    id: 'scout',
    architecture: 'llama4',
    contextSize: 16384,
    contextReason: 'chosen from free memory: the KV cache needs 3 GiB of 9 GiB free',
    threads: 8,
    gpuLayers: 0,
    offloadableLayers: 49,
    gpuWeightBytes: 0,
    gpuDevices: [],
    cpuFallbackReason: null,
    vision: true,
  };

  it('shows the automatic choices and the devices, and applies what the user typed', async () => {
    const saved: unknown[] = [];
    let current = loaded;
    mockCommands((command, args) => {
      switch (command) {
        case 'list_catalog':
        case 'list_models':
          return [];
        case 'get_loaded_model':
          return current;
        case 'get_engine_settings':
          return automatic;
        case 'list_devices':
          return [
            { name: 'CPU', description: 'Intel Xeon', backend: 'CPU', kind: 'cpu', memoryTotalBytes: 24 * 1024 ** 3, memoryFreeBytes: 20 * 1024 ** 3 },
          ];
        case 'set_engine_settings':
          saved.push(args.settings);
          current = { ...loaded, contextSize: 4096, contextReason: 'chosen in Settings', threads: 2 };
          return null;
        default:
          throw new Error(`unexpected command ${command}`);
      }
    });
    const library = new ModelLibrary();
    await library.refresh();
    const view = render(ModelsPanel, { library, onClose: vi.fn() });
    await waitFor(() => expect(view.getByTestId('device-list').textContent).toContain('Intel Xeon · CPU (cpu) · 20.0 GiB free of 24.0 GiB'));
    expect((view.getByTestId('engine-context') as HTMLInputElement).placeholder).toBe('automatic (16384)');
    expect(view.getByTestId('context-reason').textContent).toContain('chosen from free memory');
    const apply = view.getByTestId('engine-apply') as HTMLButtonElement;
    expect(apply.disabled).toBe(true);

    await fireEvent.input(view.getByTestId('engine-threads'), { target: { value: 'many' } });
    await fireEvent.click(apply);
    expect(view.getByRole('alert').textContent).toBe('Threads must be a whole number, or empty for automatic.');
    expect(saved).toEqual([]);

    await fireEvent.input(view.getByTestId('engine-threads'), { target: { value: '2' } });
    await fireEvent.input(view.getByTestId('engine-context'), { target: { value: '4096' } });
    await fireEvent.click(apply);
    await waitFor(() => expect(saved).toEqual([{ contextSize: 4096, threads: 2, gpuLayers: null }]));
    await waitFor(() => expect(view.getByTestId('loaded-model').textContent).toContain('4096'));
    expect(view.getByTestId('loaded-model').textContent).toContain('on the CPU');
    expect(view.queryByRole('alert')).toBeNull();
  });

  it('says where the layers are', async () => {
    mockCommands((command) => {
      if (command === 'list_catalog' || command === 'list_models' || command === 'list_devices') return [];
      if (command === 'get_loaded_model') return { ...loaded, gpuLayers: 19, offloadableLayers: 19, gpuWeightBytes: 68_000_000, gpuDevices: ['Vulkan0 (llvmpipe)'] };
      if (command === 'get_engine_settings') return automatic;
      return null;
    });
    const library = new ModelLibrary();
    await library.refresh();
    const view = render(ModelsPanel, { library, onClose: vi.fn() });
    expect(view.getByTestId('loaded-model').textContent).toContain('19/19 layers on Vulkan0 (llvmpipe)');
  });

  it('says why a setting could not be applied', async () => {
    mockCommands((command) => {
      if (command === 'list_catalog' || command === 'list_models') return [];
      if (command === 'get_loaded_model') return loaded;
      if (command === 'get_engine_settings') return automatic;
      if (command === 'list_devices') return [];
      if (command === 'set_engine_settings') throw { kind: 'ENGINE', message: 'the context does not fit in memory' };
      return null;
    });
    const view = render(ModelsPanel, { library: new ModelLibrary(), onClose: vi.fn() });
    await fireEvent.input(view.getByTestId('engine-context'), { target: { value: '1048576' } });
    await fireEvent.click(view.getByTestId('engine-apply'));
    await waitFor(() => expect(view.getByRole('alert').textContent).toBe('the context does not fit in memory'));
  });
});

describe('model load progress', () => {
  it('follows the backend\'s load events, whatever started the load', async () => {
    mockCommands(() => null, { events: true });
    const library = new ModelLibrary();
    const stop = await library.followLoads();
    const emit = emitBackendEvent;
    await emit('model-load-progress', 0.42);
    await waitFor(() => expect(library.loadFraction).toBe(0.42));
    // Something that is not a fraction is no progress.
    await emit('model-load-progress', 7);
    await waitFor(() => expect(library.loadFraction).toBeNull());
    await emit('model-load-progress', 0.9);
    await waitFor(() => expect(library.loadFraction).toBe(0.9));
    await emit('model-load-progress', null);
    await waitFor(() => expect(library.loadFraction).toBeNull());
    stop();
    await emit('model-load-progress', 0.1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(library.loadFraction).toBeNull();
  });

  it('the panel shows the percentage while a chosen model loads', () => {
    mockCommands(() => []);
    const library = new ModelLibrary();
    library.busy = 'Loading Llama 4 Scout…';
    library.loadFraction = 0.37;
    const view = render(ModelsPanel, { library, onClose: () => {} });
    expect(view.getByTestId('model-load-percent').textContent).toBe('37%');
    const bar = within(view.getByTestId('models-busy')).getByLabelText('Loading Llama 4 Scout…') as HTMLProgressElement;
    expect(bar.value).toBeCloseTo(0.37);
  });
});

describe('formatBytes', () => {
  it('keeps a decimal where a whole number would hide progress', () => {
    expect(formatBytes(1_290_176)).toBe('1.3 MB');
    expect(formatBytes(645_088)).toBe('645 kB');
    expect(formatBytes(65_400_000_000)).toBe('65.4 GB');
    expect(formatBytes(12)).toBe('12 B');
  });
});

describe('formatEta', () => {
  it('uses the largest units that matter', () => {
    expect(formatEta(42.4)).toBe('42 s');
    expect(formatEta(130)).toBe('2 min 10 s');
    expect(formatEta(3 * 3600 + 5 * 60 + 9)).toBe('3 h 5 min');
  });
});
