package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/berthhq/berth"
)

// berth's transports replace gqlgen's POST and GET so that every refusal,
// including a body that is not JSON, goes through the error presenter and
// carries extensions.code, the body is never echoed back, and request
// errors have one status:
//
//	200  the operation ran (errors, if any, are in the body); also
//	     PERSISTED_QUERY_NOT_FOUND, which APQ clients expect with 200
//	400  the request is not a valid GraphQL request: bad JSON, parse or
//	     validation errors, bad variables, depth or complexity over the limit
//	405  a mutation sent with GET, or a method other than GET and POST
//	413  the body is larger than MaxBodyBytes
//	415  a POST whose Content-Type is not application/json

// rawRequest is the JSON body of a POST.
type rawRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

// postTransport serves POST application/json.
type postTransport struct{}

func (postTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get("Upgrade") == ""
}

func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	start := graphql.Now()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		refuse(ctx, w, exec, http.StatusUnsupportedMediaType, "send the request as Content-Type: application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			refuse(ctx, w, exec, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
		} else {
			refuse(ctx, w, exec, http.StatusBadRequest, "the request body could not be read")
		}
		return
	}
	var raw rawRequest
	if err := decodeJSON(body, &raw); err != nil {
		refuse(ctx, w, exec, http.StatusBadRequest, "the request body must be a JSON object {query, variables, operationName}: "+err.Error())
		return
	}
	params := &graphql.RawParams{Query: raw.Query, OperationName: raw.OperationName, Variables: raw.Variables,
		Extensions: raw.Extensions, Headers: r.Header, ReadTime: graphql.TraceTiming{Start: start, End: graphql.Now()}}
	run(ctx, w, exec, params, false)
}

// getTransport serves GET ?query=&variables=&operationName=&extensions=,
// for queries only.
type getTransport struct{}

func (getTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Upgrade") == ""
}

func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	start := graphql.Now()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(ctx, w, exec, http.StatusBadRequest, "the query string is malformed")
		return
	}
	params := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName"), Headers: r.Header}
	if v := q.Get("variables"); v != "" {
		if err := decodeJSON([]byte(v), &params.Variables); err != nil {
			refuse(ctx, w, exec, http.StatusBadRequest, "variables must be a JSON object: "+err.Error())
			return
		}
	}
	if v := q.Get("extensions"); v != "" {
		if err := decodeJSON([]byte(v), &params.Extensions); err != nil {
			refuse(ctx, w, exec, http.StatusBadRequest, "extensions must be a JSON object: "+err.Error())
			return
		}
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	run(ctx, w, exec, params, true)
}

// otherMethods refuses every request the other transports do not serve.
type otherMethods struct{}

func (otherMethods) Supports(*http.Request) bool { return true }

func (otherMethods) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	w.Header().Set("Allow", "GET, POST")
	refuse(r.Context(), w, exec, http.StatusMethodNotAllowed, "use POST (or GET for queries)")
}

// run validates and executes one operation and writes the response.
func run(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, params *graphql.RawParams, queryOnly bool) {
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusBadRequest
		if persistedQueryNotFound(errs) {
			status = http.StatusOK
		}
		write(w, status, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	if queryOnly && opCtx.Operation.Operation != ast.Query {
		w.Header().Set("Allow", "POST")
		refuse(ctx, w, exec, http.StatusMethodNotAllowed, "only queries may be sent with GET; send mutations with POST")
		return
	}
	handle, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := handle(ctx)
	if resp == nil { // the client went away
		resp = &graphql.Response{}
	}
	write(w, http.StatusOK, resp)
}

// refuse answers a request that could not be run with an INVALID error.
func refuse(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, status int, msg string) {
	write(w, status, exec.DispatchError(ctx, gqlerror.List{gqlerror.Wrap(berth.Errorf(berth.EINVALID, "%s", msg))}))
}

func write(w http.ResponseWriter, status int, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil { // not expected: every part of a response marshals
		status, b = http.StatusInternalServerError, []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeJSON decodes exactly one JSON value from b into v, keeping numbers
// as json.Number as gqlgen expects.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return errors.New(typeErr.Field + " has the wrong type")
		case errors.As(err, &typeErr):
			return errors.New("not an object")
		case errors.As(err, &syntaxErr):
			return errors.New(syntaxErr.Error())
		case errors.Is(err, io.EOF):
			return errors.New("empty body")
		}
		return errors.New("not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the object")
	}
	return nil
}

func persistedQueryNotFound(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] != codePersistedQueryNotFound {
			return false
		}
	}
	return len(errs) > 0
}
