package graphql

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// introspectionQuery is GraphiQL's (graphql-js getIntrospectionQuery with
// descriptions): deeper than MaxDepth, which does not count introspection.
const introspectionQuery = `
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`

type introspected struct {
	QueryType    struct{ Name string } `json:"queryType"`
	MutationType struct{ Name string } `json:"mutationType"`
	Types        []struct {
		Kind, Name, Description string
		Fields                  []struct {
			Name, Description string
			IsDeprecated      bool
			DeprecationReason *string
			Args              []struct{ Name, Description string }
		}
		InputFields []struct{ Name, Description string }
		EnumValues  []struct{ Name, Description string }
	}
}

func TestSchemaLoadsAndIsDocumented(t *testing.T) {
	t.Parallel()
	s := setup(t)
	schema := must[introspected](s, s.gql(asAnonymous, introspectionQuery, nil), "__schema")
	if schema.QueryType.Name != "Query" || schema.MutationType.Name != "Mutation" {
		t.Fatalf("root types: %+v %+v", schema.QueryType, schema.MutationType)
	}
	builtin := map[string]bool{"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true}
	seen := map[string]bool{}
	for _, ty := range schema.Types {
		seen[ty.Name] = true
		if strings.HasPrefix(ty.Name, "__") || builtin[ty.Name] {
			continue
		}
		if ty.Description == "" {
			t.Errorf("type %s has no description", ty.Name)
		}
		for _, f := range ty.Fields {
			if f.Description == "" {
				t.Errorf("field %s.%s has no description", ty.Name, f.Name)
			}
			for _, a := range f.Args {
				if a.Description == "" {
					t.Errorf("argument %s.%s(%s) has no description", ty.Name, f.Name, a.Name)
				}
			}
			if ty.Name == "Flight" && f.Name == "seatAllocation" && (!f.IsDeprecated || f.DeprecationReason == nil) {
				t.Errorf("Flight.seatAllocation is not deprecated")
			}
		}
		for _, f := range ty.InputFields {
			if f.Description == "" {
				t.Errorf("input field %s.%s has no description", ty.Name, f.Name)
			}
		}
		for _, v := range ty.EnumValues {
			if v.Description == "" {
				t.Errorf("enum value %s.%s has no description", ty.Name, v.Name)
			}
		}
	}
	// The names the original client depends on.
	for _, name := range []string{"Flight", "Booking", "BookingStatus", "Loyalty", "ModelFlightConnection", "ModelBookingConnection",
		"ModelStringInput", "ModelIntInput", "ModelIDInput", "ModelBooleanInput", "ModelBookingStatusInput", "ModelFlightFilterInput",
		"ModelBookingFilterInput", "ModelSortDirection", "ModelStringKeyConditionInput",
		"ModelFlightByDepartureScheduleCompositeKeyConditionInput", "ModelFlightByDepartureScheduleCompositeKeyInput",
		"CreateFlightInput", "UpdateFlightInput", "DeleteFlightInput", "CreateBookingInput", "UpdateBookingInput", "DeleteBookingInput",
		"Charge", "Me", "Execution", "HistoryEntry", "ExecutionConnection", "Webhook", "AuthPayload"} {
		if !seen[name] {
			t.Errorf("type %s is missing", name)
		}
	}
	s.noInternalErrors()
}

func TestIntrospectionOverGET(t *testing.T) {
	t.Parallel()
	s := setup(t)
	req, _ := http.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(`{ __type(name: "Flight") { name fields(includeDeprecated: true) { name } } }`), nil)
	r := s.send(req)
	got := must[struct {
		Name   string
		Fields []struct{ Name string }
	}](s, r, "__type")
	if got.Name != "Flight" || len(got.Fields) != 16 {
		t.Fatalf("__type(Flight): %+v", got)
	}
}
