// Package auth turns credentials into a *berth.Actor: it issues and verifies
// bearer tokens, hashes passwords, and creates and checks API keys.
//
// # Identity comes only from verified credentials
//
// An actor is built from a bearer token whose signature, algorithm, issuer,
// audience, expiry and not-before time have all been checked, or from an API
// key whose secret matched its stored hash. Nothing else: not a request
// field, a header other than the credential itself, or an unverified claim.
// The only unverified data read is the token's "iss" and "alg", used to pick
// the issuer's keys and to reject an algorithm that issuer never uses; the
// verified "iss" is compared again afterwards.
//
// # Own issuer and external issuers
//
// berth can sign its own access tokens (Issuer): an Ed25519 key (EdDSA) kept
// in the data directory as DIR/signing-key.pem, a PKCS#8 PEM private key with
// mode 0600, created on first use. The server and the `berth token` command
// share that file, so tokens minted by either verify in both. The public key
// is published as a JSON Web Key Set (Issuer.JWKS, Issuer.JWKSHandler) and
// its key id ("kid") is the RFC 7638 thumbprint of the public key. Whoever
// can read the key file can mint any token, Admin included: protect the data
// directory accordingly. Rotating the key (deleting the file) invalidates
// every token it signed.
//
// berth can also trust external OpenID Connect issuers (ExternalIssuer):
// Cognito, Keycloak, Auth0 and the like. Their keys are found through OIDC
// discovery (or a configured JWKS URL) and re-fetched, at most every 30
// seconds, when a token names a key berth has not seen. Only asymmetric
// algorithms are ever accepted. Groups are read from a configurable claim
// ("cognito:groups" for Cognito) and trusted as they are: a user in the
// external issuer's "Admin" group is a berth admin.
//
// A Verifier holds both kinds and routes each token to the issuer named in its
// "iss" claim; a token from any other issuer is refused. Every refusal is a
// *berth.Error with code berth.EUNAUTHENTICATED and a short message that is
// safe to show ("token expired", "invalid token signature", ...); library
// error text is never passed on.
//
// # Verified-token cache
//
// Clients send the same token on every request (a customer polling a
// booking sends it a dozen times a second), so a Verifier remembers the
// tokens it accepted: up to TokenCacheSize of them, keyed by the SHA-256 of
// the whole compact token (signature included), each for at most
// TokenCacheTTL (one minute) after its signature was checked. A remembered
// token is accepted again only while its "exp" and "nbf" still hold at the
// verifier's clock, with the same leeway as a full check, so the cache never
// lengthens a token's life. Refusals are never remembered. What the cache
// can delay is a change of keys at an external issuer: a token signed with a
// key the issuer has just withdrawn stays accepted for at most TokenCacheTTL
// after it was last fully checked (berth's own key changes only with a
// restart, which starts with an empty cache). Each caller gets its own copy
// of the actor.
//
// # Passwords and API keys
//
// Passwords are hashed with argon2id and stored as PHC strings
// ("$argon2id$v=19$m=65536,t=2,p=2$salt$hash"); the parameters travel with
// each hash, so they can be raised later without invalidating old hashes.
//
// API keys look like "bk_<id>_<secret>". Callers store the id and the SHA-256
// of the secret, never the secret itself; the secret has about 190 bits of
// entropy, so a fast hash is enough. API keys are not cached: checking one
// costs a read-only transaction and a SHA-256 (no argon2), keys are revoked
// by another process (berth apikey revoke), and each request sees a
// revocation at once.
package auth
