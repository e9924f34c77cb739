// A real OpenID Provider (panva/oidc-provider, not written by us) for the
// console's browser login test (internal/console TestBrowserRealIdP): the
// authorization code flow with PKCE (S256, required) for the public client
// "warden-console", and oidc-provider's development login form
// (devInteractions: any login, any password; the login is the subject).
// ID tokens carry name, email and groups; access tokens are RFC 9068 JWTs
// for "https://warden.test/api" (audience "warden") with the groups too.
//
// Usage: PORT=<port> REDIRECT_URI=<console>/ui/callback node login.js
// (prints "ready <issuer>" when listening)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const redirectURI = process.env.REDIRECT_URI;
if (!port || !redirectURI) {
  console.error('PORT and REDIRECT_URI are required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const resource = 'https://warden.test/api';

// The test's users: the login typed into the form picks one.
const groups = {
  alice: ['ml-engineers'],
  bob: ['ml-approvers'],
  carol: ['ml-admins'],
};
const account = (id) => ({
  accountId: id,
  claims: async () => ({ sub: id, name: id, email: `${id}@example.test`, groups: groups[id] || [] }),
});

const provider = new Provider(issuer, {
  cookies: { keys: ['console-login-test-cookie-key'] },
  clients: [
    {
      client_id: 'warden-console',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [redirectURI],
    },
  ],
  pkce: { required: () => true, methods: ['S256'] },
  jwks: { keys: [{ ...rsa, kid: 'rsa-1', use: 'sig', alg: 'RS256' }] },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email'],
    groups: ['groups'],
  },
  // The console reads the claims from the ID token (it never calls
  // userinfo), so put the granted scopes' claims there.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => account(id),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: 'api', audience: 'warden', accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => ({ groups: groups[token.accountId] || [] }),
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
