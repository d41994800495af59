// node-llama-cpp's engine measured the way llama-bench measures llama.cpp: `pp` is a prompt of
// random tokens decoded in batches of 512 from an empty cache, `tg` is single-token decodes from an
// empty cache (no sampling, as llama-bench does not sample); each test is the best of `--reps`
// runs after one warm-up. Prints one JSON object on stdout. Used by scripts/bench-vs-llama.sh.
//
// node-llama-cpp is not a dependency of the repository: it is loaded from `--package-dir`, a
// folder outside the repository where bench-vs-llama.sh installed it with its prebuilt CPU binary
// (`getLlama` is told never to build or download).
//
// Usage: node scripts/node-llama-cpp-bench.mjs --package-dir DIR --model M.gguf
//            [--threads 2] [--n-prompt 512] [--n-gen 128] [--reps 3]

import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { readFile } from "node:fs/promises";

const BATCH = 512;

function parseArgs(argv) {
    const options = { threads: 2, nPrompt: 512, nGen: 128, reps: 3, packageDir: "", model: "" };
    const names = {
        "--package-dir": "packageDir",
        "--model": "model",
        "--threads": "threads",
        "--n-prompt": "nPrompt",
        "--n-gen": "nGen",
        "--reps": "reps",
    };
    for (let i = 0; i < argv.length; i += 2) {
        const key = names[argv[i]];
        const value = argv[i + 1];
        if (key === undefined || value === undefined) {
            throw new Error(`unknown or incomplete option ${argv[i]} (see the usage at the top of this file)`);
        }
        options[key] = typeof options[key] === "number" ? Number.parseInt(value, 10) : value;
        if (typeof options[key] === "number" && !(options[key] >= 0)) {
            throw new Error(`${argv[i]} needs a non-negative integer, got ${value}`);
        }
    }
    if (!options.packageDir || !options.model) {
        throw new Error("--package-dir and --model are required");
    }
    if (options.threads < 1 || options.reps < 1) {
        throw new Error("--threads and --reps must be at least 1");
    }
    return options;
}

// The same fixed xorshift sequence `cria bench` uses, so both decode comparable token streams.
function tokenSource(nVocab) {
    let state = 0x2545f491;
    return () => {
        state ^= state << 13;
        state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5;
        state >>>= 0;
        return state % nVocab;
    };
}

async function main() {
    const options = parseArgs(process.argv.slice(2));
    const packageRoot = path.join(options.packageDir, "node_modules", "node-llama-cpp");
    const packageJson = JSON.parse(await readFile(path.join(packageRoot, "package.json"), "utf8"));
    const releaseJson = JSON.parse(
        await readFile(path.join(packageRoot, "llama", "binariesGithubRelease.json"), "utf8"),
    );
    const { getLlama, LlamaLogLevel } = await import(
        pathToFileURL(path.join(packageRoot, "dist", "index.js")).href
    );

    // maxThreads 0: the context's thread count is used as given, never lowered.
    const llama = await getLlama({
        gpu: false,
        build: "never",
        usePrebuiltBinaries: true,
        skipDownload: true,
        progressLogs: false,
        logLevel: LlamaLogLevel.error,
        maxThreads: 0,
    });
    const model = await llama.loadModel({ modelPath: options.model, gpuLayers: 0 });
    const tokens = model.fileInfo.metadata?.tokenizer?.ggml?.tokens;
    const nVocab = Array.isArray(tokens) && tokens.length > 0 ? tokens.length : 0;
    if (nVocab === 0) {
        throw new Error(`${options.model}: cannot read the vocabulary size`);
    }
    const nCtx = options.nPrompt + options.nGen + 16;
    const context = await model.createContext({
        contextSize: nCtx,
        batchSize: Math.min(BATCH, nCtx),
        threads: options.threads,
        sequences: 1,
        flashAttention: "auto",
    });
    const sequence = context.getSequence();
    const nextToken = tokenSource(nVocab);

    const prompt = async (n) => {
        await sequence.clearHistory();
        const batch = Array.from({ length: n }, nextToken);
        const started = process.hrtime.bigint();
        await sequence.evaluateWithoutGeneratingNewTokens(batch);
        return Number(process.hrtime.bigint() - started) / 1e9;
    };
    const generate = async (n) => {
        await sequence.clearHistory();
        const started = process.hrtime.bigint();
        for (let i = 0; i < n; i++) {
            await sequence.evaluateWithoutGeneratingNewTokens([nextToken()]);
        }
        return Number(process.hrtime.bigint() - started) / 1e9;
    };

    // Warm-up, as llama-bench does: one small prompt and one token.
    await prompt(Math.min(32, Math.max(options.nPrompt, 1)));
    await generate(1);

    let ppBest = 0;
    let tgBest = 0;
    for (let rep = 0; rep < options.reps; rep++) {
        if (options.nPrompt > 0) {
            ppBest = Math.max(ppBest, options.nPrompt / (await prompt(options.nPrompt)));
        }
        if (options.nGen > 0) {
            tgBest = Math.max(tgBest, options.nGen / (await generate(options.nGen)));
        }
    }
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.stdout.write(
        `${JSON.stringify({
            engine: "node-llama-cpp",
            version: packageJson.version,
            llama_cpp_release: releaseJson.release,
            model: options.model,
            threads: options.threads,
            n_prompt: options.nPrompt,
            n_gen: options.nGen,
            pp_tokens_per_second: ppBest,
            tg_tokens_per_second: tgBest,
        })}\n`,
    );
}

main().catch((error) => {
    process.stderr.write(`node-llama-cpp-bench: ${error?.stack ?? error}\n`);
    process.exit(1);
});
