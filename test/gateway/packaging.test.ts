import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEFAULTS, ENV, ENV_NAMES, loadConfig } from '../../src/gateway/config/index.js';
import { MIGRATION_FILES } from '../../src/stores/postgres/schema.js';
import { testGateway } from './support.js';

/**
 * There is no Docker engine or cluster here, so this proves what can be proved statically: every YAML parses, and
 * the image, compose file and manifests name the real entry point, port, probe paths and environment variables
 * (imported from config.ts, so renaming a setting breaks this test instead of a deployment).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

type Doc = Record<string, unknown>;
const asDoc = (value: unknown): Doc => value as Doc;
const at = (value: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((node, key) => (node as Record<string | number, unknown> | undefined)?.[key], value);

function yamlDocs(path: string): Doc[] {
  const docs = parseAllDocuments(read(path));
  for (const doc of docs)
    expect(doc.errors, `${path}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
  return docs.map((doc) => asDoc(doc.toJS()));
}

function yamlFilesUnder(dir: string, recursive = true): string[] {
  const absolute = join(ROOT, dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { withFileTypes: true, recursive })
    .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** `CMD ["node", "dist/src/gateway/main.js"]` → the compiled entry, mapped back to its TypeScript source. */
function dockerEntry(): { command: string[]; source: string } {
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(read('Dockerfile'));
  expect(cmd).not.toBeNull();
  const command = JSON.parse(cmd?.[1] ?? '[]') as string[];
  const script = command.find((part) => part.endsWith('.js')) ?? '';
  // tsconfig.build.json: outDir dist, rootDir '.' → dist/src/x.js comes from src/x.ts.
  return { command, source: script.replace(/^dist\//, '').replace(/\.js$/, '.ts') };
}

function envNamesOk(names: string[]): void {
  for (const name of names) {
    if (name.startsWith('TOLLGATE_')) expect(ENV_NAMES, `${name} is not read by config.ts`).toContain(name);
    else expect(name, `${name} is neither a Tollgate nor an AWS SDK setting`).toMatch(/^(AWS_|NODE_)/);
  }
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds in one stage and runs the compiled gateway entry on node:26-slim as a non-root user', () => {
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1]);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.at(-1)).toBe('node:26-slim');
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    const user = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toBe('root');
    const { command, source } = dockerEntry();
    expect(command[0]).toBe('node');
    expect(source).toBe('src/gateway/main.ts');
    expect(existsSync(join(ROOT, source))).toBe(true);
    // The build config compiles src/ with rootDir '.' into dist/, which is what the CMD path assumes.
    const build = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    expect(build.include).toContain('src');
    expect(JSON.parse(read('tsconfig.json')).compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
  });

  it('exposes the configured port, health-checks a real route and sets only known env names', async () => {
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE\\s+${DEFAULTS.port}\\b`, 'm'));
    expect(dockerfile).toMatch(new RegExp(`${ENV.port}=${DEFAULTS.port}`));
    const healthcheck = /^HEALTHCHECK[\s\S]*?CMD\s+(\[.*\])/m.exec(dockerfile);
    expect(healthcheck?.[1]).toContain(`http://127.0.0.1:${DEFAULTS.port}/health/live`);
    envNamesOk([...dockerfile.matchAll(/\b(TOLLGATE_[A-Z_]+)=/g)].map((m) => m[1] as string));
    await expectRoutesAnswer(['/health/live']);
  });
});

describe('docker-compose.yml', () => {
  const [compose] = yamlDocs('docker-compose.yml');
  const services = at(compose, 'services') as Record<string, Doc>;

  it('runs RabbitMQ (management), DynamoDB Local and the gateway, each with a health check', () => {
    expect(services.rabbitmq?.image).toBe('rabbitmq:3-management');
    expect(services.dynamodb?.image).toBe('amazon/dynamodb-local');
    for (const name of ['rabbitmq', 'dynamodb', 'gateway'])
      expect(services[name]?.healthcheck, name).toBeDefined();
    expect(at(services.gateway, 'depends_on', 'rabbitmq', 'condition')).toBe('service_healthy');
    expect(at(services.gateway, 'depends_on', 'dynamodb', 'condition')).toBe('service_healthy');
  });

  it('points the gateway at both services with settings config.ts accepts, on the published port', async () => {
    const gateway = services.gateway as Doc;
    expect(gateway.command).toEqual(dockerEntry().command);
    const env = gateway.environment as Record<string, string>;
    envNamesOk(Object.keys(env));
    const config = loadConfig(env);
    expect(config.store).toMatchObject({ kind: 'dynamodb', endpoint: 'http://dynamodb:8000' });
    expect(new URL(config.amqpUrl ?? '').hostname).toBe('rabbitmq');
    expect(config.host).toBe('0.0.0.0'); // keys are set, so the published port reaches it
    expect(gateway.ports).toContain(`${config.port}:${config.port}`);
    const probe = (at(gateway, 'healthcheck', 'test') as string[]).join(' ');
    expect(probe).toContain(`http://127.0.0.1:${config.port}/health/ready`);
    await expectRoutesAnswer(['/health/ready']);
  });
});

describe('deploy/ (Kubernetes and DynamoDB)', () => {
  const files = yamlFilesUnder('deploy');
  // The base manifests; deploy/k8s/postgres/ holds replacements for two of them (tested below).
  const k8sDocs = yamlFilesUnder('deploy/k8s', false).flatMap(yamlDocs);
  const byKind = (kind: string) => k8sDocs.filter((d) => d.kind === kind);

  it('parses every YAML file under deploy/', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const file of files) expect(yamlDocs(file).length, file).toBeGreaterThan(0);
  });

  it('has a Deployment, Service, ConfigMap, HPA and PodDisruptionBudget that reference each other', () => {
    for (const kind of [
      'Deployment',
      'Service',
      'ConfigMap',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
    ]) {
      expect(byKind(kind), kind).toHaveLength(1);
    }
    const deployment = byKind('Deployment')[0];
    const name = at(deployment, 'metadata', 'name');
    const podLabels = at(deployment, 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
    const matches = (selector: unknown) =>
      Object.entries(selector as Record<string, string>).every(([k, v]) => podLabels[k] === v);
    expect(matches(at(byKind('Service')[0], 'spec', 'selector'))).toBe(true);
    expect(matches(at(byKind('PodDisruptionBudget')[0], 'spec', 'selector', 'matchLabels'))).toBe(true);
    expect(at(byKind('HorizontalPodAutoscaler')[0], 'spec', 'scaleTargetRef')).toMatchObject({
      kind: 'Deployment',
      name,
    });
    const container = at(deployment, 'spec', 'template', 'spec', 'containers', 0) as Doc;
    const sources = container.envFrom as Array<Record<string, { name: string }>>;
    expect(sources.map((s) => s.configMapRef?.name).filter(Boolean)).toEqual([
      at(byKind('ConfigMap')[0], 'metadata', 'name'),
    ]);
    const secretName = sources.map((s) => s.secretRef?.name).find(Boolean);
    expect(byKind('Secret').map((s) => at(s, 'metadata', 'name'))).toContain(secretName);
    const portName = at(byKind('Service')[0], 'spec', 'ports', 0, 'targetPort');
    expect((container.ports as Array<{ name: string }>).map((p) => p.name)).toContain(portName);
  });

  it('runs the real entry point on the configured port, with probes on /health/*', async () => {
    const container = at(byKind('Deployment')[0], 'spec', 'template', 'spec', 'containers', 0) as Doc;
    expect(container.command).toEqual(dockerEntry().command);
    const data = at(byKind('ConfigMap')[0], 'data') as Record<string, string>;
    const secret = at(byKind('Secret')[0], 'stringData') as Record<string, string>;
    envNamesOk([...Object.keys(data), ...Object.keys(secret)]);
    const config = loadConfig({ ...data, ...secret });
    expect(config.store.kind).toBe('dynamodb');
    expect(config.host).toBe('0.0.0.0');
    expect(at(container, 'ports', 0, 'containerPort')).toBe(config.port);
    const probePaths = ['livenessProbe', 'readinessProbe', 'startupProbe'].map((p) =>
      at(container, p, 'httpGet', 'path'),
    );
    expect(probePaths).toEqual(['/health/live', '/health/ready', '/health/live']);
    await expectRoutesAnswer(['/health/live', '/health/ready']);
    expect(at(byKind('Deployment')[0], 'spec', 'template', 'spec', 'securityContext', 'runAsNonRoot')).toBe(
      true,
    );
  });

  it('uses the DynamoDB table names of the CloudFormation template', () => {
    const template = 'deploy/dynamodb-table.yaml';
    if (!existsSync(join(ROOT, template))) return;
    const [stack] = yamlDocs(template);
    const data = at(byKind('ConfigMap')[0], 'data') as Record<string, string>;
    expect(data[ENV.dynamodbTokensTable]).toBe(at(stack, 'Parameters', 'TokensTableName', 'Default'));
    expect(data[ENV.dynamodbStateTable]).toBe(at(stack, 'Parameters', 'StateTableName', 'Default'));
  });
});

describe('PostgreSQL packaging (compose profile and Kubernetes variant)', () => {
  const MIGRATIONS_DIR = 'deploy/postgres';
  const [compose] = yamlDocs('docker-compose.yml');
  const services = at(compose, 'services') as Record<string, Doc>;

  it('compose: PostgreSQL 16 behind the postgres profile, schema from deploy/postgres, healthy over TCP', () => {
    const postgres = services.postgres as Doc;
    expect(postgres.image).toBe('postgres:16');
    expect(postgres.profiles).toEqual(['postgres']);
    const probe = at(postgres, 'healthcheck', 'test') as string[];
    expect(probe).toContain('pg_isready');
    // The init scripts run on a server that listens on its socket only: a TCP probe waits for them.
    expect(probe.slice(probe.indexOf('-h'), probe.indexOf('-h') + 2)).toEqual(['-h', '127.0.0.1']);
    const mounts = (postgres.volumes as string[]).map((v) => v.split(':'));
    // The whole folder: the entrypoint runs its files in name order, which is the migrations' order.
    const init = mounts.find(([, target]) => target?.startsWith('/docker-entrypoint-initdb.d'));
    expect(init?.[0]).toBe(`./${MIGRATIONS_DIR}`);
    expect(init?.[1]).toBe('/docker-entrypoint-initdb.d');
    expect(readdirSync(join(ROOT, MIGRATIONS_DIR)).sort()).toEqual([...MIGRATION_FILES].sort());
  });

  it('compose: a gateway on PostgreSQL with settings config.ts accepts, beside the DynamoDB one', () => {
    const gateway = services['gateway-postgres'] as Doc;
    const postgres = services.postgres as Doc;
    expect(gateway.profiles).toEqual(['postgres']);
    expect(gateway.command).toEqual(dockerEntry().command);
    expect(at(gateway, 'depends_on', 'postgres', 'condition')).toBe('service_healthy');
    expect(at(gateway, 'depends_on', 'rabbitmq', 'condition')).toBe('service_healthy');
    const env = gateway.environment as Record<string, string>;
    envNamesOk(Object.keys(env));
    const config = loadConfig(env);
    if (config.store.kind !== 'postgres') throw new Error(`store is ${config.store.kind}`);
    // Tables come from the mounted SQL file, as in production.
    expect(config.store.createTables).toBe(false);
    const url = new URL(config.store.url);
    const pgEnv = postgres.environment as Record<string, string>;
    expect(url.hostname).toBe('postgres');
    expect(decodeURIComponent(url.username)).toBe(pgEnv.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(pgEnv.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
    // The first mounted migration creates the schema the gateway is told to use.
    expect(read(`${MIGRATIONS_DIR}/${MIGRATION_FILES[0]}`)).toMatch(
      new RegExp(`CREATE SCHEMA[^;]*\\b${config.store.schema}\\b`, 'i'),
    );
    expect(config.host).toBe('0.0.0.0');
    // Its own host port, so both gateways can run at once.
    const published = (gateway.ports as string[]).map((p) => p.split(':'));
    expect(published.map(([, inside]) => Number(inside))).toContain(config.port);
    expect(published.map(([host]) => host)).not.toContain(String(DEFAULTS.port));
    const probe = (at(gateway, 'healthcheck', 'test') as string[]).join(' ');
    expect(probe).toContain(`http://127.0.0.1:${config.port}/health/ready`);
  });

  it('Kubernetes: a ConfigMap and Secret that stand in for the base ones, the URL only in the Secret', () => {
    const docs = yamlFilesUnder('deploy/k8s/postgres').flatMap(yamlDocs);
    const base = yamlFilesUnder('deploy/k8s', false).flatMap(yamlDocs);
    const one = (list: Doc[], kind: string) => {
      const found = list.filter((d) => d.kind === kind);
      expect(found, kind).toHaveLength(1);
      return found[0] as Doc;
    };
    const configMap = one(docs, 'ConfigMap');
    const secret = one(docs, 'Secret');
    const deployment = one(base, 'Deployment');
    // Same names as the base ConfigMap and Secret, so the Deployment's envFrom picks them up unchanged.
    const container = at(deployment, 'spec', 'template', 'spec', 'containers', 0) as Doc;
    const sources = container.envFrom as Array<Record<string, { name: string }>>;
    expect(at(configMap, 'metadata', 'name')).toBe(sources.map((s) => s.configMapRef?.name).find(Boolean));
    expect(at(secret, 'metadata', 'name')).toBe(sources.map((s) => s.secretRef?.name).find(Boolean));

    const data = configMap.data as Record<string, string>;
    const stringData = secret.stringData as Record<string, string>;
    envNamesOk([...Object.keys(data), ...Object.keys(stringData)]);
    expect(data[ENV.store]).toBe('postgres');
    expect(Object.keys(data)).not.toContain(ENV.postgresUrl);
    expect(Object.keys(stringData)).toContain(ENV.postgresUrl);
    expect(Object.keys(data).filter((k) => k.startsWith('TOLLGATE_DYNAMODB_'))).toEqual([]);
    const config = loadConfig({ ...data, ...stringData });
    if (config.store.kind !== 'postgres') throw new Error(`store is ${config.store.kind}`);
    expect(config.store.createTables).toBe(false);
    expect(config.host).toBe('0.0.0.0');

    // Every pod the HPA and a rolling update can run at once fits PostgreSQL's default max_connections (100,
    // 3 reserved for superusers).
    const maxReplicas = at(one(base, 'HorizontalPodAutoscaler'), 'spec', 'maxReplicas') as number;
    const maxSurge = at(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxSurge') as number;
    expect(
      (config.store.poolSize ?? DEFAULTS.postgres.poolSize) * (maxReplicas + maxSurge),
    ).toBeLessThanOrEqual(97);
  });
});

describe('npm start', () => {
  it('points at the gateway entry', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain('src/gateway/main.ts');
  });
});

describe('npm package', () => {
  // Built as `npm run build` does, into a scratch copy of the package whose node_modules are the repository's:
  // a script inside it imports every subpath by the package's own name, so node resolves package.json "exports".
  it('builds every exported entry with its types, and each resolves by name', async () => {
    const manifest = JSON.parse(read('package.json')) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    const scratch = mkdtempSync(join(tmpdir(), 'tollgate-package-'));
    await run(
      process.execPath,
      [
        join(ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(scratch, 'dist'),
      ],
      { cwd: ROOT, timeout: 240_000 },
    ).catch((error: Error & { stdout?: string }) => {
      throw new Error(`the build failed:\n${error.stdout || error.message}`);
    });
    writeFileSync(join(scratch, 'package.json'), read('package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'), 'dir');
    const names: string[] = [];
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      if (typeof target === 'string') continue;
      expect(existsSync(join(scratch, target.default)), target.default).toBe(true);
      expect(existsSync(join(scratch, target.types)), target.types).toBe(true);
      names.push(`tollgate${subpath.slice(1)}`);
    }
    expect(names).toContain('tollgate/core');
    writeFileSync(
      join(scratch, 'check.mjs'),
      `for (const name of ${JSON.stringify(names)}) {
        const entry = await import(name);
        if (Object.keys(entry).length === 0) throw new Error(name + ' exports nothing');
      }
      console.log('ok');`,
    );
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: scratch, timeout: 60_000 });
    expect(stdout.trim()).toBe('ok');
  }, 300_000);
});

async function expectRoutesAnswer(paths: string[]): Promise<void> {
  const gw = await testGateway();
  try {
    for (const path of paths) expect((await gw.app.inject({ url: path })).statusCode, path).toBe(200);
  } finally {
    await gw.close();
  }
}
