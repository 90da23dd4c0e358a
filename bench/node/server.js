// node-oidc-provider 9, set up as bench/run.py's comparison: the fastest provider we know of, measured
// with the same operations, load and /proc CPU accounting as ours (bench/README.md says how).
//
// In-memory adapter (the default: nothing persists, one process only), its development interactions
// (its own login and consent pages: any login is accepted, no password is checked or hashed), one
// confidential client allowed authorization_code (+ PKCE S256), refresh_token and client_credentials,
// RS256 ID tokens. Ours issues a refresh token with every code exchange; so does this one
// (issueRefreshToken below), so both token answers carry access + refresh + ID token.
//
// Consent: the development consent page is shown once per account; the grant it saves is then
// remembered per (account, client) for later sign-ins from new browsers (loadExistingGrant below),
// as ours remembers a consent. bench/run.py approves it once per account during the warm-up.
//
// Environment: BENCH_PORT (loopback port), BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI.
//
//     BENCH_PORT=8000 BENCH_CLIENT_ID=bench-rp BENCH_CLIENT_SECRET=… BENCH_REDIRECT_URI=… node server.js
//     BENCH_PORT=8001 node server.js --floor      # an empty node:http server: node's own floor

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.env.BENCH_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('BENCH_PORT must be a port number');
  process.exit(2);
}

if (process.argv.includes('--floor')) {
  const body = Buffer.from('{"issuer":"http://127.0.0.1"}');
  createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  }).listen(port, '127.0.0.1');
} else {
  const { default: Provider } = await import('oidc-provider');
  // The library's in-memory adapter keeps at most 1,000 entries (an LRU): a benchmark issues more
  // tokens than that, which would evict sessions and grants and send browsers back to its login
  // page. The same adapter over a store large enough for the whole run.
  const { default: MemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  const { default: LRU } = await import('oidc-provider/lib/helpers/lru.js');
  const store = new LRU({ maxSize: 10_000_000 });
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = process.env.BENCH_CLIENT_ID || 'bench-rp';
  const redirectUri = process.env.BENCH_REDIRECT_URI || 'http://127.0.0.1:9/callback';
  const clientSecret = process.env.BENCH_CLIENT_SECRET;
  if (!clientSecret) {
    console.error('BENCH_CLIENT_SECRET is required');
    process.exit(2);
  }

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

  // (account id, client id) → grant id: the consent given once, found again from a new browser.
  const remembered = new Map();

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      scope: 'openid profile email',
    }],
    adapter: (model) => new MemoryAdapter(model, store),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: '測試學生', preferred_username: id, email: `${id}@example.edu.tw`, email_verified: true };
        },
      };
    },
    async loadExistingGrant(ctx) {
      const key = `${ctx.oidc.session.accountId}\u0000${ctx.oidc.client.clientId}`;
      const given = ctx.oidc.result?.consent?.grantId;
      if (given) {
        remembered.set(key, given);
      }
      const grantId = given || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId) || remembered.get(key);
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    // Lifetimes like ours (and set, so the library does not warn about its defaults).
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 3600,
      IdToken: 3600,
      RefreshToken: 30 * 24 * 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 365 * 24 * 3600,
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.listen(port, '127.0.0.1');
}
