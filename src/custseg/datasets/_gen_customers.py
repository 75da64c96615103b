"""Generator steps for customers and the product catalogue."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.datasets._arrays import (
    _canonical,
    _date,
    _fixed_ids,
    _group_index,
    _pick,
    _take,
)
from custseg.datasets.vocabulary import (
    _BRANDS,
    _COUNTRIES,
    _NAMES,
    _NOUNS,
    _POSTAL_DIGITS,
    _PRICE,
    _TIER_WORDS,
    CATEGORIES,
    CHANNELS,
    CURRENCIES,
    CURRENCY_RATES,
    LAPSED_SILENCE_DAYS,
    PERSONAS,
    TIERS,
    _ascii,
    _persona_array,
    _persona_matrix,
)


class _CustomerSteps:
    """Steps of :class:`~custseg.datasets.generator._Gen` that run first.

    They read only the generator's setup (``rng``, ``n``, ``D``, ``start_day``)
    and set the customer and product state every later step uses.
    """

    # -- customers -----------------------------------------------------------------------
    def customers(self) -> None:
        """Customers: persona, signup and activity window, address, demographics, name, email.

        Sets ``persona``, ``P``, ``signup``, ``active_from``, ``active_to``,
        ``country_codes``, ``country``, ``email``, ``consent``, ``cust_ids`` and
        ``t_customers``.
"""
        rng, n, D = self.rng, self.n, self.D
        shares = _persona_array("share")
        counts = np.floor(shares / shares.sum() * n).astype(np.int64)
        counts[np.argsort(-shares)[: n - counts.sum()]] += 1
        persona = rng.permutation(np.repeat(np.arange(len(PERSONAS)), counts))
        self.persona = persona
        P = {name: i for i, name in enumerate(PERSONAS)}
        self.P = P

        # Signup: ~55% before trading starts, the rest during it (persona-dependent bounds).
        before_p = _persona_array("before_p")[persona]
        upper = np.full(len(PERSONAS), D - 14)
        upper[P["lapsed"]] = max(D - LAPSED_SILENCE_DAYS - 120, 1)
        # Gifters sign up before the second-to-last gift season, so they can buy in two.
        upper[P["occasional_gifter"]] = max((dt.date(self.end.year - 1, 11, 3) - self.start).days, 1)
        before = rng.random(n) < before_p
        signup = np.where(
            before,
            rng.integers(-3 * 365, 0, n),
            np.floor(rng.random(n) * upper[persona]).astype(np.int64),
        )
        self.signup = signup
        self.active_from = np.maximum(signup, 0)
        active_to = np.full(n, D, dtype=np.int64)
        lapsed = persona == P["lapsed"]
        lo = self.active_from[lapsed] + 60
        hi = D - LAPSED_SILENCE_DAYS
        active_to[lapsed] = lo + np.floor(rng.random(lapsed.sum()) * np.maximum(hi - lo, 1)).astype(np.int64)
        self.active_to = np.minimum(active_to, D)

        # Geography.
        codes = list(_COUNTRIES)
        cw = np.array([_COUNTRIES[c][0] for c in codes])
        country = rng.choice(len(codes), n, p=cw / cw.sum())
        self.country_codes = codes
        self.country = country
        city_names, region_codes = [], []
        city = np.empty(n, dtype=np.int64)
        postal_parts: list[tuple[np.ndarray, pa.Array]] = []
        for ci, code in enumerate(codes):
            idx = np.flatnonzero(country == ci)
            cities = _COUNTRIES[code][3]
            w = np.array([c[3] for c in cities])
            local = rng.choice(len(cities), len(idx), p=w / w.sum())
            base = len(city_names)
            city[idx] = base + local
            for j, (cname, region, spec, _w) in enumerate(cities):
                city_names.append(cname)
                region_codes.append(region)
                rows = idx[local == j]
                postal_parts.append((rows, self._postal(code, spec, len(rows))))
        order = np.concatenate([r for r, _ in postal_parts])
        postal_all = pa.concat_arrays([a for _, a in postal_parts])
        postal = postal_all.take(pa.array(np.argsort(order, kind="stable")))

        # Demographics.
        female_p = _persona_array("female_p")[persona]
        u = rng.random(n)
        gender = np.where(u < 0.03, 3, np.where(u < 0.045, 2, np.where(rng.random(n) < female_p, 0, 1)))
        age_mu, age_sd = _persona_matrix("age").T
        age = np.clip(rng.normal(age_mu[persona], age_sd[persona]), 18, 88)
        birth = self.start_day + D - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
        birth_missing = rng.random(n) < 0.12

        # Names: language by country, first names by gender.
        langs = sorted(_NAMES)
        lang_of_country = np.array([langs.index(_COUNTRIES[c][2]) for c in codes])
        lang = lang_of_country[country]
        use_female = np.where(gender == 0, True, np.where(gender == 1, False, rng.random(n) < 0.5))
        first_display, first_ascii, last_display, last_ascii = [], [], [], []
        f_off, f_len, l_off, l_len = [], [], [], []
        for lg in langs:
            fem, mal, last = _NAMES[lg]
            for group in (fem, mal):
                f_off.append(len(first_display))
                f_len.append(len(group))
                first_display += list(group)
                first_ascii += [_ascii(x) for x in group]
            l_off.append(len(last_display))
            l_len.append(len(last))
            last_display += list(last)
            last_ascii += [_ascii(x) for x in last]
        f_off, f_len = np.array(f_off), np.array(f_len)
        l_off, l_len = np.array(l_off), np.array(l_len)
        fgroup = lang * 2 + (~use_female).astype(np.int64)
        fi = f_off[fgroup] + np.floor(rng.random(n) * f_len[fgroup]).astype(np.int64)
        li = l_off[lang] + np.floor(rng.random(n) * l_len[lang]).astype(np.int64)
        first = _take(first_display, fi)
        last = _take(last_display, li)
        self.email = self._emails(_take(first_ascii, fi), _take(last_ascii, li), "example.com", n)

        channel = _pick(rng, persona, _persona_matrix("channels"))
        loyalty = rng.random(n) < _persona_array("loyalty_p")[persona]
        consent = rng.random(n) < _persona_array("consent_p")[persona]
        self.consent = consent
        width = max(6, len(str(n)))
        self.cust_ids = _fixed_ids("C", np.arange(1, n + 1), width)
        self.t_customers = _canonical("customers", {
            "customer_id": self.cust_ids,
            "email": self.email,
            "first_name": first,
            "last_name": last,
            "signup_date": _date(self.start_day + signup),
            "birth_date": _date(birth, mask=birth_missing),
            "gender": _take(["female", "male", "other", "unknown"], gender),
            "country": _take(codes, country),
            "region": _take(region_codes, city),
            "city": _take(city_names, city),
            "postal_code": postal,
            "acquisition_channel": _take(list(CHANNELS), channel),
            "loyalty_member": pa.array(loyalty),
            "email_consent": pa.array(consent),
        })

    def _postal(self, country: str, spec, k: int) -> pa.Array:
        """``k`` postal codes of one city, in the country's format (``spec`` as in ``_COUNTRIES``).
"""
        rng = self.rng
        if k == 0:
            return pa.array([], pa.string())
        if isinstance(spec[0], str):  # outward codes + inward part (GB) or eircode (IE)
            outward = _take(list(spec), rng.integers(0, len(spec), k))
            letters = np.frombuffer(b"ABDEFGHJLNPQRSTUWXYZ", dtype=np.uint8)
            if country == "GB":
                mat = np.stack([rng.integers(48, 58, k).astype(np.uint8),
                                letters[rng.integers(0, len(letters), k)],
                                letters[rng.integers(0, len(letters), k)]], axis=1)
            else:
                alnum = np.frombuffer(b"0123456789ACDEFHKNPRTVWXY", dtype=np.uint8)
                mat = np.stack([letters[rng.integers(0, len(letters), k)]]
                               + [alnum[rng.integers(0, len(alnum), k)] for _ in range(3)], axis=1)
            inward = pa.Array.from_buffers(
                pa.string(), k, [None, pa.py_buffer(np.arange(0, (k + 1) * mat.shape[1], mat.shape[1], dtype=np.int32)),
                                 pa.py_buffer(np.ascontiguousarray(mat))])
            return pc.binary_join_element_wise(outward, inward, " ")
        lo, hi = spec
        num = rng.integers(lo, hi + 1, k)
        digits = _POSTAL_DIGITS[country]
        s = _fixed_ids("", num, digits)
        if country == "PL":
            return pc.binary_join_element_wise(pc.utf8_slice_codeunits(s, 0, 2), pc.utf8_slice_codeunits(s, 2, 5), "-")
        if country == "PT":
            return pc.binary_join_element_wise(s, _fixed_ids("", rng.integers(0, 1000, k), 3), "-")
        if country == "NL":
            letters = np.frombuffer(b"ABCDEGHJKLMNPRSTVWXZ", dtype=np.uint8)
            mat = np.ascontiguousarray(np.stack([letters[rng.integers(0, len(letters), k)] for _ in range(2)], axis=1))
            suffix = pa.Array.from_buffers(pa.string(), k, [None, pa.py_buffer(np.arange(0, 2 * k + 1, 2, dtype=np.int32)), pa.py_buffer(mat)])
            return pc.binary_join_element_wise(s, suffix, " ")
        return s

    def _emails(self, first_ascii: pa.Array, last_ascii: pa.Array, domain: str, k: int) -> pa.Array:
        """Unique lower-case addresses like ``first.last123@domain``."""
        rng = self.rng
        pattern = rng.choice(4, k, p=[0.55, 0.2, 0.15, 0.1])
        initial = pc.utf8_slice_codeunits(first_ascii, 0, 1)
        firstpart = pc.if_else(pa.array(pattern == 2), initial, first_ascii)
        sep = _take([".", "", ".", "_"], pattern)
        number = pc.cast(pa.array(rng.permutation(k) + 1 + rng.integers(0, 90)), pa.string())
        return pc.binary_join_element_wise(firstpart, sep, last_ascii, number, "@" + domain, "")

    # -- products --------------------------------------------------------------------------
    def products(self) -> None:
        """The catalogue: 600 products with category, price tier, brand and list price.

        Sets ``prod_cat``, ``prod_tier``, ``prod_price``, ``prod_price_cur`` (per
        order currency), ``prod_ids``, ``prod_names``, ``cat_names``, the sampling
        buckets ``bucket_products`` and ``bucket_cum``, and ``t_products``.
"""
        rng = self.rng
        n_products = 600
        w = np.array([_PRICE[c][2] for c in CATEGORIES], dtype=float)
        counts = np.floor(w / w.sum() * n_products).astype(np.int64)
        counts[: n_products - counts.sum()] += 1
        cat = np.repeat(np.arange(len(CATEGORIES)), counts)
        med = np.array([_PRICE[c][0] for c in CATEGORIES], dtype=float)[cat]
        sig = np.array([_PRICE[c][1] for c in CATEGORIES], dtype=float)[cat]
        raw = np.exp(np.log(med) + sig * rng.standard_normal(n_products))
        ending = np.array([0.99, 0.99, 0.99, 0.95, 0.49, 0.0])[rng.integers(0, 6, n_products)]
        price = np.maximum(np.floor(raw) + ending, 0.99)
        price = np.where(price == np.floor(price), price - 0.01, price).round(2)
        price = np.maximum(price, 0.49)
        # Price tier: within-category terciles.
        tier = np.zeros(n_products, dtype=np.int64)
        for c in range(len(CATEGORIES)):
            idx = np.flatnonzero(cat == c)
            ranks = np.argsort(np.argsort(price[idx], kind="stable"), kind="stable")
            tier[idx] = np.minimum(ranks * 3 // len(idx), 2)
        brand_i = rng.integers(0, 5, n_products)
        noun_i = rng.integers(0, 10, n_products)
        word_i = rng.integers(0, 4, n_products)
        names, brands, seen = [], [], {}
        for i in range(n_products):  # the catalogue is small: a loop is fine here
            c = CATEGORIES[cat[i]]
            brand = _BRANDS[c][brand_i[i]]
            name = f"{brand} {_TIER_WORDS[TIERS[tier[i]]][word_i[i]]} {_NOUNS[c][noun_i[i]]}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} {seen[name]}"
            names.append(name)
            brands.append(brand)
        self.prod_cat = cat
        self.prod_tier = tier
        self.prod_price = price
        self.prod_ids = _fixed_ids("P", np.arange(1, n_products + 1), 4)
        self.prod_names = pa.array(names)
        self.cat_names = pa.array(list(CATEGORIES))
        # Prices in every order currency (rounded to .99 for GBP and USD).
        rates = np.array([CURRENCY_RATES[c] for c in CURRENCIES])
        local = np.ceil(price[None, :] / rates[:, None]) - 0.01
        local[0] = price
        self.prod_price_cur = local.round(2)
        # Sampling buckets by (category, tier) with Zipf-like popularity inside.
        bucket = cat * 3 + tier
        order = np.lexsort((rng.random(n_products), bucket))
        sizes = np.bincount(bucket, minlength=len(CATEGORIES) * 3)
        _, rank = _group_index(sizes)
        pop = 1.0 / (rank + 2.0) ** 0.9
        cum = np.zeros(n_products)
        for b in range(len(sizes)):
            sl = slice(sizes[:b].sum(), sizes[: b + 1].sum())
            cum[sl] = b + np.cumsum(pop[sl]) / pop[sl].sum()
        self.bucket_products = order
        self.bucket_cum = cum
        self.t_products = _canonical("products", {
            "product_id": self.prod_ids,
            "name": self.prod_names,
            "category": _take(self.cat_names, cat),
            "brand": pa.array(brands),
            "price": pa.array(price),
            "price_tier": _take(list(TIERS), tier),
        })

    def _choose_products(self, cat: np.ndarray, tier: np.ndarray) -> np.ndarray:
        """One product per row of the given category and tier, popular products more often.
"""
        bucket = cat * 3 + tier
        u = self.rng.random(len(cat))
        pos = np.searchsorted(self.bucket_cum, bucket + u, side="right")
        pos = np.minimum(pos, len(self.bucket_cum) - 1)
        return self.bucket_products[pos]
