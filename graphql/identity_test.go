package graphql

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

type authPayload struct {
	AccessToken, TokenType, Sub, Username string
	ExpiresIn                             int
	Groups                                []string
}

const (
	signUp = `mutation($u: String!, $e: String, $p: String!) { signUp(username: $u, email: $e, password: $p) {
		accessToken tokenType expiresIn sub username groups } }`
	signIn = `mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) {
		accessToken tokenType expiresIn sub username groups } }`
)

func TestSignUpSignIn(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	verifier, err := auth.NewVerifier(ctx, s.issuer, nil)
	if err != nil {
		t.Fatal(err)
	}

	up := must[authPayload](s, s.gql(asAnonymous, signUp, map[string]any{"u": "  Carol.D ", "e": "Carol@Example.com", "p": "correct horse"}), "signUp")
	if up.TokenType != "Bearer" || up.ExpiresIn != 3600 || up.Username != "carol.d" || !berth.IsID(up.Sub) ||
		!slices.Equal(up.Groups, []string{"customer"}) {
		t.Fatalf("signUp: %+v", up)
	}
	a, err := verifier.Verify(ctx, up.AccessToken)
	if err != nil || a.Subject != up.Sub || a.Username != "carol.d" || !a.InGroup("customer") || a.IsAdmin() {
		t.Fatalf("signUp token: %+v, %v", a, err)
	}
	var acc *berth.Account
	if err := s.db.View(ctx, func(tx berth.Tx) (err error) { acc, err = tx.GetAccount(up.Sub); return err }); err != nil {
		t.Fatal(err)
	}
	if acc.Status != berth.AccountUnverified || acc.Email != "carol@example.com" || !strings.HasPrefix(acc.PasswordHash, "$argon2id$") {
		t.Fatalf("account: %+v", acc)
	}

	for _, c := range []struct {
		name, user, email, pw, code, msg string
	}{
		{"taken username", "CAROL.d", "", "another password", "CONFLICT", "username already exists"},
		{"taken email", "carol2", "carol@example.COM", "another password", "CONFLICT", "email already exists"},
		{"short password", "dave", "", "short", "INVALID", ""},
		{"bad username", "x", "", "long enough", "INVALID", ""},
		{"bad email", "erin", "not-an-email", "long enough", "INVALID", ""},
	} {
		var email any
		if c.email != "" {
			email = c.email
		}
		e := s.wantError(s.gql(asAnonymous, signUp, map[string]any{"u": c.user, "e": email, "p": c.pw}), http.StatusOK, c.code)
		if c.msg != "" && e.Message != c.msg {
			t.Errorf("%s: message %q, want %q", c.name, e.Message, c.msg)
		}
	}

	in := must[authPayload](s, s.gql(asAnonymous, signIn, map[string]any{"u": "CAROL.D", "p": "correct horse"}), "signIn")
	if in.Sub != up.Sub || in.Username != "carol.d" || in.AccessToken == "" {
		t.Fatalf("signIn: %+v", in)
	}
	if a, err := verifier.Verify(ctx, in.AccessToken); err != nil || a.Subject != up.Sub {
		t.Fatalf("signIn token: %+v, %v", a, err)
	}
	for _, c := range []struct{ user, pw string }{
		{"carol.d", "wrong horse"}, {"nobody", "correct horse"}, {"?", "correct horse"},
	} {
		e := s.wantError(s.gql(asAnonymous, signIn, map[string]any{"u": c.user, "p": c.pw}), http.StatusOK, "UNAUTHENTICATED")
		if e.Message != "wrong username or password" {
			t.Errorf("signIn(%s): message %q", c.user, e.Message)
		}
	}

	// A deactivated account: the right password is FORBIDDEN, a wrong one
	// still says nothing about the account.
	hash, err := auth.HashPassword("frank's password", cheapPasswords)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(ctx, func(tx berth.Tx) error {
		return tx.CreateAccount(&berth.Account{ID: berth.NewID(), Username: "frank", PasswordHash: hash, Groups: []string{"customer"},
			Status: berth.AccountDeactivated})
	}); err != nil {
		t.Fatal(err)
	}
	s.wantError(s.gql(asAnonymous, signIn, map[string]any{"u": "frank", "p": "frank's password"}), http.StatusOK, "FORBIDDEN")
	s.wantError(s.gql(asAnonymous, signIn, map[string]any{"u": "frank", "p": "wrong password"}), http.StatusOK, "UNAUTHENTICATED")
	s.noInternalErrors()
}

func TestSignInDisabledWithoutIssuer(t *testing.T) {
	t.Parallel()
	s := setup(t, func(c *Config) { c.Issuer = nil })
	s.wantError(s.gql(asAnonymous, signIn, map[string]any{"u": "carol", "p": "correct horse"}), http.StatusOK, "FORBIDDEN")
	s.wantError(s.gql(asAnonymous, signUp, map[string]any{"u": "carol", "p": "correct horse"}), http.StatusOK, "FORBIDDEN")
}

func TestMe(t *testing.T) {
	t.Parallel()
	s := setup(t)
	r := s.gql(asAnonymous, `{ me { sub } }`, nil)
	if len(r.Errors) > 0 || string(r.Data["me"]) != "null" {
		t.Fatalf("anonymous me: %s", r.raw)
	}
	me := must[struct {
		Sub      string
		Username *string
		Groups   []string
	}](s, s.gql(asAdmin, `{ me { sub username groups } }`, nil), "me")
	if me.Sub != "admin-sub" || *me.Username != "admin" || !slices.Equal(me.Groups, []string{"Admin"}) {
		t.Fatalf("me: %+v", me)
	}
	key := must[struct {
		Sub      string
		Username *string
		Groups   []string
	}](s, s.gql(asAPIKey, `{ me { sub username groups } }`, nil), "me")
	if key.Sub != "key-1" || key.Username != nil || key.Groups == nil || len(key.Groups) != 0 {
		t.Fatalf("API key me: %+v", key)
	}
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	s := setup(t)
	register := `mutation($u: String!, $t: [String!]) { registerWebhook(url: $u, eventTypes: $t) { id url eventTypes createdAt secret } }`
	type webhook struct {
		ID, URL, CreatedAt string
		EventTypes         []string
		Secret             *string
	}
	w := must[webhook](s, s.gql(asAdmin, register, map[string]any{"u": "https://hooks.example.com/berth",
		"t": []string{"BookingConfirmed", "BookingFailed", "BookingConfirmed"}}), "registerWebhook")
	if w.Secret == nil || len(*w.Secret) < 32 || !slices.Equal(w.EventTypes, []string{"BookingConfirmed", "BookingFailed"}) {
		t.Fatalf("registerWebhook: %+v", w)
	}
	all := must[webhook](s, s.gql(asAdmin, register, map[string]any{"u": "http://127.0.0.1:9000/"}), "registerWebhook")
	if len(all.EventTypes) != 0 || all.Secret == nil || *all.Secret == *w.Secret {
		t.Fatalf("registerWebhook for every event: %+v", all)
	}

	for _, c := range []struct {
		url   string
		types []string
	}{
		{"ftp://example.com/", nil}, {"https:///nohost", nil}, {"not a url", nil},
		{"https://example.com/" + strings.Repeat("a", 2048), nil}, {"https://example.com/", []string{"a,b"}}, {"https://example.com/", []string{""}},
	} {
		s.wantError(s.gql(asAdmin, register, map[string]any{"u": c.url, "t": c.types}), http.StatusOK, "INVALID")
	}
	s.wantError(s.gql(asAlice, register, map[string]any{"u": "https://example.com/"}), http.StatusOK, "FORBIDDEN")
	s.wantError(s.gql(asAnonymous, register, map[string]any{"u": "https://example.com/"}), http.StatusOK, "UNAUTHENTICATED")

	list := must[[]webhook](s, s.gql(asAdmin, `{ webhooks { id url eventTypes createdAt secret } }`, nil), "webhooks")
	if len(list) != 2 {
		t.Fatalf("webhooks: %+v", list)
	}
	for _, h := range list {
		if h.Secret != nil {
			t.Fatalf("webhooks shows a secret: %+v", h)
		}
	}
	s.wantError(s.gql(asBob, `{ webhooks { id } }`, nil), http.StatusOK, "FORBIDDEN")

	del := `mutation($id: ID!) { deleteWebhook(id: $id) { id url secret } }`
	s.wantError(s.gql(asBob, del, map[string]any{"id": w.ID}), http.StatusOK, "FORBIDDEN")
	d := must[webhook](s, s.gql(asAdmin, del, map[string]any{"id": w.ID}), "deleteWebhook")
	if d.ID != w.ID || d.Secret != nil {
		t.Fatalf("deleteWebhook: %+v", d)
	}
	s.wantError(s.gql(asAdmin, del, map[string]any{"id": w.ID}), http.StatusOK, "NOT_FOUND")
	s.noInternalErrors()
}
