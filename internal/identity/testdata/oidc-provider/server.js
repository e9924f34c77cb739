// A real OpenID Provider (panva/oidc-provider, not written by us) for
// TestInteropOIDCProvider. It issues RFC 9068 JWT access tokens through the
// client_credentials grant, for the resource "https://warden.test/api"
// (audience "warden"), with a "groups" claim.
//
// Usage: PORT=<port> node server.js   (prints "ready <issuer>" when listening)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
if (!port) {
  console.error('PORT is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Fresh signing keys for every run: one RSA (RS256), one P-256 (ES256).
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const resource = 'https://warden.test/api';
const alg = process.env.ACCESS_TOKEN_ALG || 'RS256';

const provider = new Provider(issuer, {
  cookies: { keys: ['interop-test-cookie-key'] },
  clients: [
    {
      client_id: 'batch-svc',
      client_secret: 'interop-test-secret-not-used-anywhere-else',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [{ ...rsa, kid: 'rsa-1', use: 'sig', alg: 'RS256' }, { ...ec, kid: 'ec-1', use: 'sig', alg: 'ES256' }] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: 'infer',
          audience: 'warden',
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => ({ groups: ['ml-batch', 'eng'] }),
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
