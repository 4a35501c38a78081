/*
 * berth: starts GraphiQL on the page served by github.com/berthhq/berth/graphiql.
 *
 * Loaded as a plain <script> after react, react-dom and graphiql (UMD globals
 * React, ReactDOM and GraphiQL), so the page needs no inline script and works
 * under a strict Content-Security-Policy. The GraphQL endpoint is read from
 * the data-endpoint attribute of #graphiql.
 */
(function () {
  'use strict';

  var root = document.getElementById('graphiql');
  if (!root) {
    return;
  }
  var endpoint = root.getAttribute('data-endpoint') || '/graphql';

  var DEFAULT_QUERY = [
    '# Welcome to berth. Get a token: go run ./cmd/berth token --sub alice --groups customer',
    '# and paste it into the Headers tab below.',
    'query Flights {',
    '  listFlights(limit: 10) {',
    '    items {',
    '      id',
    '      flightNumber',
    '      departureAirportCode',
    '      arrivalAirportCode',
    '      departureDate',
    '      ticketPrice',
    '      ticketCurrency',
    '      seatCapacity',
    '    }',
    '    nextToken',
    '  }',
    '}',
    ''
  ].join('\n');

  var DEFAULT_HEADERS = JSON.stringify({
    Authorization: 'Bearer <paste a token from: berth token --sub alice --groups customer>'
  }, null, 2);

  // A header value still containing "<...>" is the unedited placeholder: it is
  // not sent, so the server sees an anonymous request instead of a bogus token.
  function isPlaceholder(value) {
    return typeof value === 'string' && /<[^<>]*>/.test(value);
  }

  function withoutPlaceholders(headers) {
    var out = {};
    if (!headers) {
      return out;
    }
    Object.keys(headers).forEach(function (name) {
      var value = headers[name];
      if (value === undefined || value === null || isPlaceholder(value)) {
        return;
      }
      out[name] = String(value);
    });
    return out;
  }

  // fetch used by GraphiQL's fetcher: drops placeholder headers and turns a
  // non-JSON answer (say a plain-text 401 from an auth middleware) into a
  // GraphQL error the response pane can show.
  function berthFetch(url, init) {
    var options = Object.assign({}, init, { headers: withoutPlaceholders(init && init.headers) });
    return window.fetch(url, options).then(function (res) {
      var type = res.headers.get('Content-Type') || '';
      if (/json/i.test(type)) {
        return res;
      }
      return res.text().then(function (text) {
        var message = 'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
        text = text.trim();
        if (text) {
          message += ': ' + text;
        }
        return new Response(JSON.stringify({ errors: [{ message: message }] }), {
          status: res.status,
          headers: { 'Content-Type': 'application/json' }
        });
      });
    });
  }

  // POSTs {query, variables, operationName} as JSON with
  // "Content-Type: application/json", plus the headers from GraphiQL's
  // headers editor, which GraphiQL passes in on every request.
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    fetch: berthFetch,
    enableIncrementalDelivery: false
  });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false
    })
  );
})();
