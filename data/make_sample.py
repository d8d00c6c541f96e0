#!/usr/bin/env python3
"""Writes data/sample/usage/: two months (October and November 2026) of
daily usage for the hand-made reference files in data/sample/. Each day's
rows are the same small set, so totals can be followed by eye; a few days
carry deliberate faults (see BAD_ROWS) and format variations. Re-running
this script rewrites the same bytes."""

import datetime as dt
import gzip
import pathlib
from decimal import Decimal as D

HERE = pathlib.Path(__file__).parent / "sample" / "usage"
MOSP = "7f3c2a10-5b1e-4c2d-9a8e-0d4f6b7c8e91"
HEADER = ["date", "billingAccountId", "billingProfileId", "subscriptionId", "meterId",
          "meterCategory", "meterName", "unitOfMeasure", "quantity", "unitPrice",
          "costInBillingCurrency", "billingCurrency", "chargeType", "publisherType",
          "pricingModel", "isAzureCreditEligible", "resourceId"]


def q(s):
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def row(day, acct, prof, sub, meter, cat, name, unit, qty, price, cur, charge="Usage",
        publisher="Azure", pricing="OnDemand", eligible="True", cost=None, rid=None):
    cost = cost if cost is not None else str(D(qty) * D(price))
    rid = rid if rid is not None else f"/subscriptions/{sub}/resourceGroups/rg-main/providers/Microsoft.Compute/virtualMachines/vm-01"
    return [day, acct, prof, sub, meter, cat, name, unit, qty, price, cost, cur, charge,
            publisher, pricing, eligible, rid]


def rows_for(d):
    day = d.isoformat()
    out = [
        row(day, "ACC-NORDLYS", "PRF-NORDLYS-NO", "SUB-NO-PROD", "m-d2sv3-no", "Virtual Machines",
            "D2s v3, Nordic – Øst", "1 Hour", "24", "1.0320", "NOK"),
        row(day, "ACC-NORDLYS", "PRF-NORDLYS-NO", "SUB-NO-DEV", "m-p1v3", "Azure App Service",
            "P1v3 App Service Plan", "1 Hour", "24", "2.10", "NOK"),
        row(day, "ACC-NORDLYS", "PRF-NORDLYS-SE", "SUB-SE-PROD", "m-hot-lrs", "Storage",
            "Hot LRS Data Stored, Malmö", "1 GB/Month", "500", "0.30", "SEK"),
        row(day, "ACC-POLDER", "PRF-POLDER-NL", "SUB-NL-MAIN", "m-d4sv5", "Virtual Machines",
            "D4s v5 \"Standard\"", "1 Hour", "24", "0.1920", "EUR"),
        row(day, "ACC-POLDER", "PRF-POLDER-NL", "SUB-NL-MAIN", "m-egress", "Bandwidth",
            "Data Transfer Out, Zone 1", "1 GB", "16.0000000000000001", "0.0875", "EUR",
            cost="1.4000000000000001"),
        row(day, "ACC-POLDER", "PRF-POLDER-NL", "SUB-NL-TRIAL", "m-b2ms", "Virtual Machines",
            "B2ms, Noord-Holland", "1 Hour", "10", "0.0832", "EUR"),
        row(day, "ACC-POLDER", "PRF-POLDER-LAB", "SUB-LAB-TRIAL", "m-b1s", "Virtual Machines",
            "B1s, Västeurope", "1 Hour", "5", "0.05", "EUR"),
        row(day, "ACC-ASTROM", MOSP, MOSP, "m-b2s-us", "Virtual Machines",
            "B2s Linux", "1 Hour", "8", "0.096", "USD"),
    ]
    if d >= dt.date(2026, 10, 25):
        out.append(row(day, "ACC-POLDER", "PRF-POLDER-US", "SUB-US-APP", "m-p1v3-us",
                       "Azure App Service", "P1v3 App Service Plan, Linux", "1 Hour", "24", "0.169", "USD"))
    if d == dt.date(2026, 10, 5):
        out.append(row(day, "ACC-ASTROM", MOSP, MOSP, "m-saas-contoso", "SaaS",
                       "Contoso Analytics – “Teams” plan", "1 Month", "1", "49.00", "USD",
                       charge="Purchase", publisher="Marketplace", eligible="False", rid=""))
    if d == dt.date(2026, 10, 12):
        out.append(row(day, "ACC-ASTROM", MOSP, MOSP, "m-ri-d2sv3", "Virtual Machines",
                       "D2s v3 Reservation, 1 Year", "1", "1", "126.14", "USD",
                       charge="Purchase", pricing="Reservation", rid=""))
    if d == dt.date(2026, 11, 3):
        out.append(row(day, "ACC-ASTROM", MOSP, MOSP, "m-ri-d2sv3", "Virtual Machines",
                       "D2s v3 Reservation, 1 Year", "1", "-1", "20.00", "USD", cost="-20.00",
                       charge="Refund", pricing="Reservation", rid=""))
    if d == dt.date(2026, 11, 18):
        out.append(row(day, "ACC-NORDLYS", "PRF-NORDLYS-NO", "SUB-NO-PROD", "m-d2sv3-no",
                       "Virtual Machines", "D2s v3, Nordic – Øst", "1 Hour", "-24", "1.0320", "NOK",
                       charge="Refund"))
    return out


# (day, what to append: a raw line, already CSV) — each breaks one rule of SPEC §2.1.
BAD_ROWS = {
    "2026-10-07": ['2026-10-07,ACC-NORDLYS,PRF-NORDLYS-NO,SUB-NO-PROD,m-d2sv3-no,Virtual Machines,"D2s v3, Nordic – Øst",1 Hour,"12,5",1.0320,12.90,NOK,Usage,Azure,OnDemand,True,'],
    "2026-10-13": ['2026-10-13,ACC-NORDLYS,PRF-NORDLYS-NO,SUB-NO-GHOST,m-d2sv3-no,Virtual Machines,D2s v3,1 Hour,24,1.0320,24.768,NOK,Usage,Azure,OnDemand,True,'],
    "2026-10-21": ['2026-10-21,ACC-NORDLYS,PRF-NORDLYS-NO,SUB-NO-PROD,m-d2sv3-no,Virtual Machines,D2s v3,1 Hour,24,0.0960,2.304,EUR,Usage,Azure,OnDemand,True,'],
    "2026-11-09": ['2026-11-09,ACC-POLDER,PRF-POLDER-NL,SUB-NL-MAIN,,Virtual Machines,D4s v5,1 Hour,24,0.1920,4.608,EUR,Usage,Azure,OnDemand,True,'],
    "2026-11-17": ['2026-11-17,ACC-POLDER,PRF-POLDER-NL,SUB-NL-MAIN,m-d4sv5,Virtual Machines,D4s v5,1 Hour,24,0.1920,4.608,EUR,Usage,Azure,OnDemand,True,,extra'],
}


def write(path, lines, crlf=False, bom=False):
    end = "\r\n" if crlf else "\n"
    text = ("\ufeff" if bom else "") + end.join(lines) + end
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)


def main():
    HERE.mkdir(parents=True, exist_ok=True)
    for old in HERE.iterdir():
        old.unlink()
    d = dt.date(2026, 10, 1)
    while d <= dt.date(2026, 11, 30):
        day = d.isoformat()
        rows = rows_for(d)
        header = list(HEADER)
        if d == dt.date(2026, 10, 16):
            # The cost export's US dates, EA's currency column name, other column order.
            for r in rows:
                r[0] = d.strftime("%m/%d/%Y")
            header[11] = "billingCurrencyCode"
            order = list(reversed(range(len(header))))
            header = [header[i] for i in order]
            rows = [[r[i] for i in order] for r in rows]
        if d == dt.date(2026, 11, 2):
            for r in rows:
                r[0] = day + "T00:00:00Z"
        lines = [",".join(header)] + [",".join(q(c) for c in r) for r in rows] + BAD_ROWS.get(day, [])
        if d == dt.date(2026, 11, 10):
            # A day may have several files: part of the day arrives separately, gzipped.
            write(HERE / f"{day}.csv", lines[:-1])
            write(HERE / f"{day}-marketplace.csv.gz", [lines[0], lines[-1]])
        else:
            write(HERE / f"{day}.csv", lines, crlf=d.day == 20, bom=d.day == 20)
        d += dt.timedelta(days=1)
    (HERE / "README.txt").write_text("Not a usage file: faktura ignores and reports it.\n")


if __name__ == "__main__":
    main()
