#!/usr/bin/env python3
"""localstripe (PyPI, pinned in scripts/lib.sh), a stateful Stripe emulator, on loopback,
with the few pieces of Stripe's real API it lacks. Docket's Stripe client is written from
Stripe's API reference and sends the same requests to real Stripe; each patch below names
the real behaviour it stands for. localstripe is GPL and is run as a tool, never copied.

Usage: localstripe-compat.py --port PORT   (state in memory only; one instance per test)
"""

import argparse

from aiohttp import web
from localstripe import server
from localstripe.resources import (Event, Invoice, InvoiceItem, InvoiceLineItem, UserError,
                                   schedule_webhook, store)

# Real Stripe: POST /v1/invoices makes a draft invoice for any customer, in `currency` if
# given; pending_invoice_items_behavior=exclude leaves the customer's pending items alone
# (include takes them). It accepts auto_advance and collection_method. localstripe answers
# 404 ("No upcoming invoices") for a customer without a subscription, always takes the
# pending items, and 500s on those fields.
_create = Invoice._api_create.__func__


def _invoice_create(cls, customer=None, subscription=None, pending_invoice_items_behavior=None,
                    auto_advance=None, collection_method=None, currency=None, description=None,
                    metadata=None, **kwargs):
    if subscription is None and not kwargs:
        if pending_invoice_items_behavior not in (None, 'include', 'exclude'):
            raise UserError(400, 'Invalid pending_invoice_items_behavior')
        if collection_method not in (None, 'charge_automatically', 'send_invoice'):
            raise UserError(400, 'Invalid collection_method')
        obj = cls(customer=customer, description=description, metadata=metadata)
        if pending_invoice_items_behavior != 'include':
            # Give back the pending items localstripe's constructor took.
            for line in obj.lines._list:
                InvoiceItem._api_retrieve(line.invoice_item).invoice = None
            obj.lines._list = []
        if currency is not None:
            obj.currency = currency
        return obj
    return _create(cls, customer=customer, subscription=subscription, description=description,
                   metadata=metadata, **kwargs)


Invoice._api_create = classmethod(_invoice_create)

# Real Stripe: POST /v1/invoiceitems with `invoice` adds the item to that draft invoice
# (its lines and totals); localstripe records the id but leaves the invoice's lines alone.
_item_create = InvoiceItem._api_create.__func__


def _invoice_item_create(cls, **data):
    invoice = data.get('invoice')
    if invoice is not None and Invoice._api_retrieve(invoice).status != 'draft':
        raise UserError(400, 'Items can only be added to a draft invoice')
    item = _item_create(cls, **data)
    if invoice is not None:
        obj = Invoice._api_retrieve(invoice)
        obj.lines._list.append(InvoiceLineItem(item))
    return item


InvoiceItem._api_create = classmethod(_invoice_item_create)


# Real Stripe: POST /v1/invoices/{id}/finalize turns a draft into an open invoice and sends
# invoice.finalized; finalizing an invoice that is not a draft is a 400.
def _finalize(id=None, **kwargs):
    obj = Invoice._api_retrieve(id)
    if obj.status != 'draft':
        raise UserError(400, 'This invoice is already finalized')
    obj._finalize()
    schedule_webhook(Event('invoice.finalized', obj))
    return obj


# Real Stripe sends invoice.paid (as well as invoice.payment_succeeded) when an invoice is
# paid; localstripe sends only the latter.
_paid = Invoice._on_payment_success


def _on_payment_success(self):
    _paid(self)
    schedule_webhook(Event('invoice.paid', self))


Invoice._on_payment_success = _on_payment_success

# Real Stripe: a POST repeated with the same Idempotency-Key (same account) returns the
# first request's result instead of doing it again (keys live 24 hours). localstripe
# ignores the header. Successful results are replayed here.
_replies = {}


@web.middleware
async def idempotency(request, handler):
    key = request.headers.get('Idempotency-Key')
    if request.method != 'POST' or not key:
        return await handler(request)
    slot = (request.headers.get('Authorization', ''), key)
    if slot in _replies:
        status, body = _replies[slot]
        return web.Response(status=status, body=body, content_type='application/json')
    resp = await handler(request)
    if 200 <= resp.status < 300 and resp.body is not None:
        _replies[slot] = (resp.status, resp.body)
    return resp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    # One emulator per test, state in memory: never the shared /tmp/localstripe.pickle.
    store.dump_to_disk = lambda: None
    app = server.app
    # After the error middleware (so errors are answered as usual), before the handlers.
    app.middlewares.insert(1, idempotency)
    app.router.add_route('POST', '/v1/invoices/{id}/finalize',
                         server.api_extra(_finalize, '/v1/invoices/{id}/finalize'))
    web.run_app(app, host='127.0.0.1', port=args.port, access_log=None, print=None)


if __name__ == '__main__':
    main()
