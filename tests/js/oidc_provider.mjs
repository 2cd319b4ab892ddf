// A real OpenID Connect provider for Takt's single sign-on tests (never served by Takt):
// the certified `oidc-provider` (pinned in package.json), on loopback.
//
//   PORT=…  REDIRECT_URI=…  CLIENT_SECRET=…  ACCOUNTS='{"sam": {"groups": ["planners"]}}'
//   node tests/js/oidc_provider.mjs
//
// One confidential client, `takt`, with the authorization code flow and PKCE (S256)
// required. Its own development login form accepts any account name (the tests sign in
// as the accounts in ACCOUNTS, whose `groups` claim Takt maps to a role); consent is
// granted without asking. The id token carries the profile claims.
//
// POST /__test/id-token?mode=wrong-audience|expired|normal makes the token endpoint hand
// out id tokens re-signed with the provider's own key but with another audience, or
// already expired: signed correctly, so only Takt's audience and expiry checks can
// refuse them.
import Provider from "oidc-provider";
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from "jose";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || "{}");

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: "test-key", alg: "RS256", use: "sig" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "takt",
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  jwks: { keys: [signingKey] },
  pkce: { required: () => true },
  scopes: ["openid", "profile", "email"],
  claims: { openid: ["sub"], profile: ["name", "preferred_username", "groups"] },
  conformIdTokenClaims: false,
  cookies: { keys: ["takt-test-cookies"] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts[id] || {};
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: account.name || id,
          groups: account.groups || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile email");
    grant.addOIDCClaims(["name", "preferred_username", "groups"]);
    await grant.save();
    return grant;
  },
});

let mode = "normal";
provider.use(async (ctx, next) => {
  if (ctx.path === "/__test/id-token" && ctx.method === "POST") {
    mode = ctx.query.mode || "normal";
    ctx.body = { mode };
    return;
  }
  await next();
  if (ctx.path === "/token" && mode !== "normal" && ctx.body && ctx.body.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    const now = Math.floor(Date.now() / 1000);
    if (mode === "wrong-audience") claims.aud = "another-application";
    if (mode === "expired") Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
    ctx.body = {
      ...ctx.body,
      id_token: await new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid: "test-key" })
        .sign(privateKey),
    };
  }
});

provider.listen(port, "127.0.0.1", () => console.log(`oidc provider on ${issuer}`));
