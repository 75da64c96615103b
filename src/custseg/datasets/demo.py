"""A seeded, realistic demo store with planted customer personas.

:func:`make_store` draws a whole online shop from one seed: customers with
demographics, a product catalogue, orders and their lines, browsing sessions,
email engagement, a few survey answers and one randomised win-back campaign
with a known effect. Every customer is drawn from one of six personas
(:data:`PERSONAS`) whose behaviour differs clearly, so that segmentation
methods can be checked against the ground truth kept in ``demo_personas``.

Everything is vectorised numpy / pyarrow: there is no Python loop over
customers, orders or events (only over personas, countries, cities, years and
campaigns), and every random draw comes from ``numpy.random.default_rng(seed)``,
so the same seed gives identical tables.

Measured on the 2-core development machine, ``make_store(1_000_000, seed=0)``
takes 14-23 s wall time (``/usr/bin/time -v``: 23.2 s and 14.7 s in two runs)
with a peak resident memory of 4.7 GiB, for 1,000,000 customers, 4,949,336
orders, 10,363,378 order lines, 12,261,166 browsing events and 6,248,533 email
events. 10,000 customers take about 0.3 s. See ``docs/demo-store.md``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.store.schema import get_table

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

PERSONAS: tuple[str, ...] = (
    "loyal_premium",
    "bargain_hunter",
    "one_time_buyer",
    "lapsed",
    "window_shopper",
    "occasional_gifter",
)
CATEGORIES: tuple[str, ...] = (
    "electronics", "fashion", "home", "beauty", "sports",
    "books", "toys", "grocery", "garden", "jewelry",
)
TIERS: tuple[str, ...] = ("budget", "mid", "premium")
CHANNELS: tuple[str, ...] = (
    "organic", "paid_search", "social", "email", "referral", "affiliate", "marketplace",
)
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "USD")
#: Units of EUR per unit of each currency (the store's base currency is EUR).
CURRENCY_RATES: dict[str, float] = {"EUR": 1.0, "GBP": 1.17, "USD": 0.92}
BASE_CURRENCY = "EUR"
WINBACK_ID = "CAMP-WINBACK"
#: Days of silence before ``as_of`` that every ``lapsed`` customer is guaranteed.
LAPSED_SILENCE_DAYS = 300
#: Tables of a demo store, in load order (canonical names).
TABLE_NAMES: tuple[str, ...] = (
    "customers", "products", "orders", "order_items", "browsing_events", "email_events",
    "survey_responses", "campaigns", "campaign_assignments", "currency_rates",
)

_DAY = 86_400
_US = 1_000_000

# Per-persona parameters. Category weights follow CATEGORIES, tier weights TIERS,
# channel weights CHANNELS, quantity weights 1/2/3 units. Rates are per 30.44-day
# month. before_p: share who signed up before trading starts; extra_lines: mean
# lines per order beyond the first; *_p: probabilities; age and nps: (mean, sd);
# lift: designed absolute lift of the win-back campaign.
_P = {
    "loyal_premium": dict(
        before_p=0.6, share=0.08, cats=(6, 5, 3, 4, 2, 1, 1, 1, 1, 3), tiers=(0.04, 0.28, 0.68),
        orders_pm=1.1, min_orders=3, extra_lines=1.4, qty=(0.86, 0.11, 0.03),
        disc_p=0.08, disc_pct={10: 0.5, 15: 0.5}, return_p=0.045, cancel_p=0.02, app_p=0.6,
        sessions_pm=0.1, views=3.0, add_p=0.35, checkout_p=0.3,
        open_p=0.55, click_p=0.35, unsub_p=0.002, loyalty_p=0.8, consent_p=0.88,
        age=(42, 10), channels=(3, 1, 1, 2, 2, 0.3, 0.2), nps=(9.0, 1.2), survey_p=0.06,
        lift=0.03, female_p=0.5,
    ),
    "bargain_hunter": dict(
        before_p=0.5, share=0.17, cats=(1, 3, 4, 3, 2, 1, 2, 5, 1, 0.3), tiers=(0.72, 0.24, 0.04),
        orders_pm=0.55, min_orders=2, extra_lines=1.0, qty=(0.6, 0.28, 0.12),
        disc_p=0.72, disc_pct={10: 0.2, 15: 0.25, 20: 0.3, 25: 0.15, 30: 0.1},
        return_p=0.07, cancel_p=0.04, app_p=0.45,
        sessions_pm=0.08, views=4.0, add_p=0.3, checkout_p=0.25,
        open_p=0.38, click_p=0.4, unsub_p=0.004, loyalty_p=0.4, consent_p=0.8,
        age=(33, 10), channels=(1, 2, 3, 1, 0.5, 3, 1), nps=(7.0, 1.8), survey_p=0.03,
        lift=0.09, female_p=0.55,
    ),
    "one_time_buyer": dict(
        before_p=0.4, share=0.25, cats=(3, 4, 2, 2, 1.5, 2, 1, 0.5, 0.5, 1), tiers=(0.3, 0.55, 0.15),
        orders_pm=0.0, min_orders=1, extra_lines=0.5, qty=(0.9, 0.08, 0.02),
        disc_p=0.3, disc_pct={10: 1.0}, return_p=0.1, cancel_p=0.03, app_p=0.2,
        sessions_pm=0.02, views=3.0, add_p=0.2, checkout_p=0.2,
        open_p=0.12, click_p=0.12, unsub_p=0.012, loyalty_p=0.05, consent_p=0.62,
        age=(38, 14), channels=(1, 3, 3, 0.3, 0.5, 1, 1), nps=(6.0, 2.5), survey_p=0.015,
        lift=0.0, female_p=0.5,
    ),
    "lapsed": dict(
        before_p=0.75, share=0.18, cats=(1, 2, 3, 1, 3, 4, 1, 1, 3, 0.5), tiers=(0.25, 0.55, 0.2),
        orders_pm=0.45, min_orders=2, extra_lines=0.9, qty=(0.85, 0.12, 0.03),
        disc_p=0.15, disc_pct={10: 0.6, 15: 0.4}, return_p=0.06, cancel_p=0.03, app_p=0.25,
        sessions_pm=0.1, views=3.0, add_p=0.25, checkout_p=0.25,
        open_p=0.1, click_p=0.12, unsub_p=0.015, loyalty_p=0.2, consent_p=0.65,
        age=(47, 14), channels=(2, 2, 1, 1, 1, 0.5, 0.3), nps=(5.0, 2.5), survey_p=0.02,
        lift=0.06, female_p=0.48,
    ),
    "window_shopper": dict(
        before_p=0.45, share=0.15, cats=(4, 4, 1.5, 2, 2, 1, 1, 0.3, 0.5, 2), tiers=(0.15, 0.4, 0.45),
        orders_pm=0.0, min_orders=0, extra_lines=0.0, qty=(1.0, 0.0, 0.0),
        disc_p=0.0, disc_pct={10: 1.0}, return_p=0.0, cancel_p=0.0, app_p=0.4,
        sessions_pm=0.18, views=5.0, add_p=0.45, checkout_p=0.25,
        open_p=0.28, click_p=0.3, unsub_p=0.006, loyalty_p=0.06, consent_p=0.6,
        age=(29, 9), channels=(2, 2, 4, 0.3, 0.5, 1, 0.3), nps=(7.0, 2.0), survey_p=0.01,
        lift=0.0, female_p=0.52,
    ),
    "occasional_gifter": dict(
        before_p=0.6, share=0.17, cats=(1.5, 1, 1, 2, 0.5, 2.5, 6, 0.3, 0.3, 4), tiers=(0.15, 0.55, 0.3),
        orders_pm=2.0 / 12.17, min_orders=1, extra_lines=1.0, qty=(0.8, 0.15, 0.05),
        disc_p=0.2, disc_pct={10: 0.4, 15: 0.3, 20: 0.3}, return_p=0.03, cancel_p=0.02, app_p=0.2,
        sessions_pm=0.06, views=4.0, add_p=0.3, checkout_p=0.25,
        open_p=0.22, click_p=0.25, unsub_p=0.006, loyalty_p=0.15, consent_p=0.72,
        age=(52, 12), channels=(2, 2, 0.5, 1.5, 1.5, 0.3, 0.3), nps=(8.0, 1.5), survey_p=0.03,
        lift=0.04, female_p=0.58,
    ),
}
_DISC_PCTS = (10, 15, 20, 25, 30)
_DISC_PREFIXES = ("SAVE", "DEAL", "FLASH", "WELCOME", "WINBACK")

_BRANDS = {
    "electronics": ("Voltra", "Nordwave", "Kepler Audio", "Pixelon", "Ampere & Co"),
    "fashion": ("Maison Lune", "Urban Thread", "Fjord & Fell", "Corsa", "Linea Verde"),
    "home": ("Hearthly", "Casa Nova", "Norrland Home", "Oak & Ember", "Tidy Nest"),
    "beauty": ("Lumière", "Pure Petal", "Aurelia", "Glowlab", "Botanica"),
    "sports": ("Peakline", "Stride", "Kinetix", "Summit Gear", "AquaPace"),
    "books": ("Penhallow Press", "Blue Quill", "Atlas Editions", "Paperlane", "Inkwell"),
    "toys": ("Tiny Tinker", "Bloxi", "Wonderbox", "Playfield", "Kiddo & Co"),
    "grocery": ("Green Pantry", "Terra Fina", "Daily Harvest", "Olivo", "Brewhaus"),
    "garden": ("Greenthumb", "Bloom & Root", "Terrace Co", "Wildling", "Fernwood"),
    "jewelry": ("Aurum", "Stella Fine", "Silverleaf", "Opaline", "Marlowe"),
}
_NOUNS = {
    "electronics": ("Wireless Headphones", "Bluetooth Speaker", "Smartwatch", "USB-C Charger",
                    "Tablet", "Mechanical Keyboard", "Webcam", "E-Reader", "Power Bank", "Earbuds"),
    "fashion": ("Denim Jacket", "Wool Sweater", "Sneakers", "Chinos", "Summer Dress",
                "Rain Coat", "Linen Shirt", "Leather Belt", "Scarf", "Ankle Boots"),
    "home": ("Throw Blanket", "Ceramic Vase", "Table Lamp", "Cushion Cover", "Bath Towel Set",
             "Coffee Mugs", "Storage Basket", "Wall Clock", "Bed Linen", "Scented Candle"),
    "beauty": ("Face Serum", "Night Cream", "Shampoo", "Lip Balm", "Eau de Parfum",
               "Body Lotion", "Sheet Masks", "Hand Cream", "Cleansing Gel", "Mascara"),
    "sports": ("Yoga Mat", "Running Shoes", "Water Bottle", "Resistance Bands", "Cycling Gloves",
               "Training Shorts", "Dumbbell Set", "Swim Goggles", "Backpack", "Fitness Tracker"),
    "books": ("Cookbook", "Crime Novel", "Travel Guide", "Biography", "Fantasy Saga",
              "Poetry Collection", "Children's Picture Book", "Self-Help Guide", "History Atlas",
              "Graphic Novel"),
    "toys": ("Building Blocks", "Plush Bear", "Puzzle 1000 pcs", "Board Game", "Wooden Train",
             "Doll House", "Remote Control Car", "Craft Kit", "Card Game", "Science Kit"),
    "grocery": ("Olive Oil", "Espresso Beans", "Dark Chocolate", "Green Tea", "Pasta",
                "Granola", "Honey", "Spice Set", "Sparkling Water", "Almonds"),
    "garden": ("Pruning Shears", "Plant Pot", "Garden Hose", "Seed Kit", "Bird Feeder",
               "Solar Lights", "Watering Can", "Raised Bed", "Gardening Gloves", "Compost Bin"),
    "jewelry": ("Silver Necklace", "Gold Earrings", "Charm Bracelet", "Signet Ring", "Pearl Studs",
                "Pendant", "Cufflinks", "Anklet", "Brooch", "Watch Strap"),
}
_TIER_WORDS = {
    "budget": ("Basic", "Essential", "Everyday", "Value"),
    "mid": ("Classic", "Comfort", "Select", "Signature"),
    "premium": ("Pro", "Premium", "Elite", "Luxe"),
}
# Lognormal list prices per category: (median EUR, sigma) and catalogue weight.
_PRICE = {
    "electronics": (79, 0.9, 80), "fashion": (39, 0.6, 110), "home": (29, 0.8, 80),
    "beauty": (18, 0.6, 60), "sports": (35, 0.8, 50), "books": (14, 0.4, 70),
    "toys": (22, 0.7, 50), "grocery": (6, 0.6, 40), "garden": (25, 0.9, 30),
    "jewelry": (69, 1.0, 30),
}
_SEARCH = {
    "electronics": ("wireless headphones", "usb c charger", "smartwatch", "bluetooth speaker"),
    "fashion": ("sneakers", "wool sweater", "rain jacket women", "linen shirt"),
    "home": ("table lamp", "throw blanket", "scented candle", "bed linen 200x200"),
    "beauty": ("face serum", "vegan shampoo", "perfume", "night cream"),
    "sports": ("yoga mat", "running shoes", "dumbbells", "water bottle"),
    "books": ("crime novel", "cookbook", "fantasy", "travel guide italy"),
    "toys": ("lego", "board game", "puzzle 1000", "plush"),
    "grocery": ("espresso", "olive oil", "dark chocolate", "green tea"),
    "garden": ("plant pot", "garden hose", "solar lights", "bird feeder"),
    "jewelry": ("silver necklace", "gold earrings", "bracelet", "ring"),
}

# Countries: (weight, currency, language, cities). A city is
# (name, region code, postal spec, weight); a postal spec is a numeric range
# (lo, hi) formatted per country, or a tuple of outward codes (GB, IE).
_COUNTRIES = {
    "DE": (0.26, "EUR", "de", (
        ("Berlin", "BE", (10115, 14199), 0.25), ("Hamburg", "HH", (20095, 22769), 0.15),
        ("München", "BY", (80331, 81929), 0.15), ("Köln", "NW", (50667, 51149), 0.12),
        ("Frankfurt am Main", "HE", (60306, 60599), 0.1), ("Stuttgart", "BW", (70173, 70619), 0.08),
        ("Düsseldorf", "NW", (40210, 40629), 0.08), ("Leipzig", "SN", (4103, 4357), 0.07))),
    "FR": (0.16, "EUR", "fr", (
        ("Paris", "IDF", (75001, 75020), 0.35), ("Lyon", "ARA", (69001, 69009), 0.15),
        ("Marseille", "PAC", (13001, 13016), 0.12), ("Toulouse", "OCC", (31000, 31500), 0.1),
        ("Bordeaux", "NAQ", (33000, 33800), 0.1), ("Lille", "HDF", (59000, 59800), 0.1),
        ("Nantes", "PDL", (44000, 44300), 0.08))),
    "GB": (0.08, "GBP", "en", (
        ("London", "ENG", ("EC1A", "SW1A", "SE1", "E1", "N1", "NW3", "W2", "SW11"), 0.4),
        ("Manchester", "ENG", ("M1", "M4", "M14", "M20"), 0.15),
        ("Birmingham", "ENG", ("B1", "B5", "B15", "B29"), 0.12),
        ("Leeds", "ENG", ("LS1", "LS6", "LS11"), 0.1), ("Glasgow", "SCT", ("G1", "G3", "G12"), 0.1),
        ("Edinburgh", "SCT", ("EH1", "EH3", "EH10"), 0.08),
        ("Cardiff", "WLS", ("CF10", "CF11", "CF24"), 0.05))),
    "NL": (0.08, "EUR", "nl", (
        ("Amsterdam", "NH", (1011, 1109), 0.35), ("Rotterdam", "ZH", (3011, 3089), 0.2),
        ("Den Haag", "ZH", (2491, 2597), 0.15), ("Utrecht", "UT", (3511, 3585), 0.15),
        ("Eindhoven", "NB", (5611, 5658), 0.15))),
    "ES": (0.09, "EUR", "es", (
        ("Madrid", "M", (28001, 28055), 0.35), ("Barcelona", "B", (8001, 8042), 0.3),
        ("Valencia", "V", (46001, 46026), 0.15), ("Sevilla", "SE", (41001, 41020), 0.1),
        ("Málaga", "MA", (29001, 29018), 0.1))),
    "IT": (0.09, "EUR", "it", (
        ("Roma", "RM", (118, 199), 0.3), ("Milano", "MI", (20121, 20162), 0.3),
        ("Napoli", "NA", (80121, 80147), 0.12), ("Torino", "TO", (10121, 10156), 0.12),
        ("Bologna", "BO", (40121, 40141), 0.08), ("Firenze", "FI", (50121, 50145), 0.08))),
    "BE": (0.05, "EUR", "fr", (
        ("Bruxelles", "BRU", (1000, 1210), 0.4), ("Antwerpen", "VAN", (2000, 2660), 0.35),
        ("Gent", "VOV", (9000, 9052), 0.25))),
    "AT": (0.04, "EUR", "de", (
        ("Wien", "9", (1010, 1230), 0.6), ("Graz", "6", (8010, 8054), 0.2),
        ("Linz", "4", (4020, 4040), 0.2))),
    "US": (0.05, "USD", "en", (
        ("New York", "NY", (10001, 10292), 0.3), ("Los Angeles", "CA", (90001, 90089), 0.25),
        ("Chicago", "IL", (60601, 60661), 0.2), ("Austin", "TX", (78701, 78759), 0.1),
        ("Seattle", "WA", (98101, 98199), 0.15))),
    "IE": (0.03, "EUR", "en", (
        ("Dublin", "D", ("D01", "D02", "D04", "D06", "D08", "D24"), 0.7),
        ("Cork", "CO", ("T12", "T23"), 0.3))),
    "PL": (0.04, "EUR", "pl", (
        ("Warszawa", "MZ", (1, 4999), 0.5), ("Kraków", "MA", (30001, 31999), 0.3),
        ("Gdańsk", "PM", (80001, 80999), 0.2))),
    "PT": (0.03, "EUR", "pt", (
        ("Lisboa", "11", (1000, 1999), 0.6), ("Porto", "13", (4000, 4499), 0.4))),
}
_POSTAL_DIGITS = {"DE": 5, "FR": 5, "ES": 5, "IT": 5, "US": 5, "NL": 4, "BE": 4, "AT": 4, "PL": 5, "PT": 4}

_NAMES = {
    "de": (("Anna", "Lena", "Julia", "Sophie", "Laura", "Katrin", "Sabine", "Jana", "Lea", "Hannah",
            "Marie", "Claudia"),
           ("Lukas", "Jonas", "Felix", "Maximilian", "Paul", "Thomas", "Stefan", "Jürgen", "Tim",
            "Moritz", "Andreas", "Florian"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
            "Hoffmann", "Schäfer", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Zimmermann")),
    "fr": (("Camille", "Léa", "Manon", "Chloé", "Julie", "Sarah", "Inès", "Émilie", "Claire", "Lucie"),
           ("Lucas", "Hugo", "Louis", "Nathan", "Théo", "Antoine", "Julien", "Nicolas", "Pierre", "Mathieu"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Lefèvre", "Girard", "Fontaine", "Rousseau")),
    "en": (("Emma", "Olivia", "Amelia", "Jessica", "Emily", "Sophie", "Charlotte", "Grace",
            "Hannah", "Chloe", "Megan", "Lucy"),
           ("Oliver", "Jack", "Harry", "George", "James", "William", "Thomas", "Daniel",
            "Michael", "Ryan", "Liam", "Samuel"),
           ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Robinson", "Wright", "Walker", "O'Brien", "Murphy", "Clarke", "Evans", "Hughes")),
    "nl": (("Emma", "Sanne", "Fleur", "Lotte", "Anouk", "Iris", "Eva", "Noor", "Femke", "Lisa"),
           ("Daan", "Sem", "Lars", "Bram", "Thijs", "Ruben", "Jesse", "Niels", "Joost", "Stijn"),
           ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser",
            "Smit", "Meijer", "de Boer", "Mulder", "Bos")),
    "es": (("María", "Lucía", "Paula", "Laura", "Marta", "Carmen", "Sara", "Elena", "Ana", "Alba"),
           ("Hugo", "Daniel", "Pablo", "Alejandro", "Javier", "Sergio", "Carlos", "David",
            "José", "Manuel"),
           ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
            "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno")),
    "it": (("Giulia", "Sofia", "Martina", "Chiara", "Francesca", "Alessia", "Sara", "Elisa",
            "Valentina", "Federica"),
           ("Luca", "Marco", "Alessandro", "Matteo", "Lorenzo", "Andrea", "Francesco", "Davide",
            "Giuseppe", "Simone"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
            "Marino", "Greco", "Bruno", "De Luca")),
    "pl": (("Anna", "Zofia", "Maja", "Katarzyna", "Agnieszka", "Magdalena", "Ewa", "Joanna"),
           ("Jakub", "Piotr", "Krzysztof", "Tomasz", "Paweł", "Michał", "Kamil", "Łukasz"),
           ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński",
            "Szymański")),
    "pt": (("Maria", "Ana", "Beatriz", "Inês", "Mariana", "Joana", "Sofia", "Rita"),
           ("João", "Rodrigo", "Tiago", "Pedro", "Diogo", "Miguel", "Rui", "Gonçalo"),
           ("Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins")),
}

_HOUR_WEIGHTS = np.array(
    [0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.3,
     2.5, 2.4, 2.2, 2.1, 2.2, 2.5, 3.0, 3.6, 4.0, 3.8, 2.8, 1.4]
)


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


@dataclass(repr=False)
class DemoStore:
    """The tables of a demo store, one pyarrow Table each, with canonical column names.

    The canonical tables carry every column of :mod:`custseg.store.schema`
    except the provenance columns ``ingest_id`` and ``source_row``.

    Attributes
    ----------
    customers, products, orders, order_items, browsing_events, email_events,
    survey_responses, campaigns, campaign_assignments, currency_rates : pyarrow.Table
        The canonical tables.
    demo_personas : pyarrow.Table
        Ground truth: ``customer_id``, ``persona`` for every customer.
    campaign_truth : pyarrow.Table
        The true effect of the win-back campaign per persona: ``campaign_id``,
        ``persona``, ``lift`` (designed absolute lift in the probability of
        ordering inside the campaign window), ``realized_lift`` (share of treated
        customers the campaign converted), ``n_treatment``, ``n_control``,
        ``window_start``, ``window_end``.
    discount_codes : pyarrow.Table
        ``order_id``, ``discount_code`` aligned row by row with ``orders``
        (null when no discount); used by the Shopify export.
    as_of : datetime.date
        The day after the last order: the reference date for recency.
    """

    customers: pa.Table
    products: pa.Table
    orders: pa.Table
    order_items: pa.Table
    browsing_events: pa.Table
    email_events: pa.Table
    survey_responses: pa.Table
    campaigns: pa.Table
    campaign_assignments: pa.Table
    currency_rates: pa.Table
    demo_personas: pa.Table
    campaign_truth: pa.Table
    discount_codes: pa.Table
    as_of: dt.date
    seed: int = 0
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)

    def tables(self) -> dict[str, pa.Table]:
        """The canonical tables by name, in load order."""
        return {name: getattr(self, name) for name in TABLE_NAMES}

    def row_counts(self) -> dict[str, int]:
        out = {name: t.num_rows for name, t in self.tables().items()}
        out["demo_personas"] = self.demo_personas.num_rows
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v:,}" for k, v in self.row_counts().items())
        return f"DemoStore(seed={self.seed}, as_of={self.as_of}, {counts})"

    def __eq__(self, other: object) -> bool:  # pyarrow tables need .equals
        if not isinstance(other, DemoStore):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, pa.Table):
                if not a.equals(b):
                    return False
            elif a != b:
                return False
        return True


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _fixed_ids(prefix: str, values: np.ndarray, width: int, base: int = 10) -> pa.Array:
    """``prefix`` + ``values`` written with exactly ``width`` digits (base 10 or 16)."""
    values = np.asarray(values, dtype=np.uint64)
    n = len(values)
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    lp = len(p)
    mat = np.empty((n, lp + width), dtype=np.uint8)
    mat[:, :lp] = p
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    v = values.copy()
    for j in range(width - 1, -1, -1):
        if base == 16:
            mat[:, lp + j] = digits[(v & np.uint64(15)).astype(np.intp)]
            v >>= np.uint64(4)
        else:
            q = v // np.uint64(10)
            mat[:, lp + j] = (v - q * np.uint64(10)).astype(np.uint8) + 48
            v = q
    size = (n + 1) * (lp + width)
    offsets = np.arange(0, size, lp + width, dtype=np.int32 if size < 2**31 else np.int64)
    typ = pa.string() if size < 2**31 else pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(mat)]).cast(pa.string())


def _scrambled(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct, random-looking 64-bit values (a seeded bijection of 0..n-1)."""
    mult = np.uint64(0x9E3779B97F4A7C15)
    salt = np.uint64(int(rng.integers(0, 2**63)))
    with np.errstate(over="ignore"):
        return (np.arange(n, dtype=np.uint64) * mult) ^ salt


def _number_ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` + unpadded decimal ``numbers``."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers, pa.int64()), pa.string()), "")


def _take(values, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as a pyarrow array; null where ``mask`` is True."""
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    return arr.take(pa.array(idx, mask=mask) if mask is not None else pa.array(idx))


def _ts(seconds_since_epoch: np.ndarray) -> pa.Array:
    us = np.asarray(seconds_since_epoch, dtype=np.int64) * _US
    return pa.array(us.view("datetime64[us]"))


def _date(days_since_epoch: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days_since_epoch, dtype=np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


def _pick(rng: np.random.Generator, group: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row; row ``i`` uses the distribution ``probs[group[i]]``."""
    probs = np.asarray(probs, dtype=float)
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    k = probs.shape[1]
    flat = (cum + 2.0 * np.arange(len(probs))[:, None]).ravel()
    u = rng.random(len(group))
    idx = np.searchsorted(flat, 2.0 * group + u, side="right")
    return np.minimum(idx - group * k, k - 1)


def _group_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of sizes ``counts``: the group of every row and the row's rank inside it."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    starts = np.cumsum(counts) - counts
    rank = (np.arange(len(owner), dtype=np.int64) - starts[owner]).astype(np.int32)
    return owner, rank


def _ascii(name: str) -> str:
    s = name.replace("ß", "ss").replace("ł", "l").replace("Ł", "L")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(ch for ch in s.lower() if ch.isalnum())


def _black_friday(year: int) -> dt.date:
    nov1 = dt.date(year, 11, 1)
    first_thu = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + dt.timedelta(days=22)


def _day_curves(start: dt.date, n_days: int) -> np.ndarray:
    """Daily order/visit intensity, one row per persona (seasonality, weekdays, Black Friday)."""
    days = np.datetime64(start, "D") + np.arange(n_days)
    months = days.astype("datetime64[M]").astype(int) % 12  # 0 = January
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    weekday = (days.astype(int) + 3) % 7  # 0 = Monday
    month_f = np.array([1.05, 0.85, 0.9, 0.95, 0.95, 0.9, 0.95, 0.9, 0.95, 1.0, 1.25, 1.3])[months]
    weekday_f = np.array([1.05, 1.0, 1.0, 0.98, 0.92, 0.9, 1.15])[weekday]
    base = month_f * weekday_f
    base[(months == 11) & (dom >= 24) & (dom <= 26)] *= 0.5
    bf = np.zeros(n_days, dtype=bool)
    for year in range(start.year, start.year + n_days // 365 + 2):
        d0 = (np.datetime64(_black_friday(year), "D") - days[0]).astype(int)
        bf[max(d0, 0):max(min(d0 + 4, n_days), 0)] = True
    base[bf] *= 2.2
    season = ((months == 10) & (dom >= 10)) | ((months == 11) & (dom <= 22))
    valentine = (months == 1) & (dom <= 13)
    gift = base * np.where(season, 1.0, np.where(valentine, 0.2, 0.05))
    curves = np.tile(base, (len(PERSONAS), 1))
    curves[PERSONAS.index("occasional_gifter")] = gift
    return curves


def _sample_days(rng, curves_cdf: np.ndarray, group: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day in ``[lo, hi)`` per row, drawn from the daily curve of the row's group."""
    n_groups, width = curves_cdf.shape
    flat = (curves_cdf + 2.0 * np.arange(n_groups)[:, None]).ravel()
    base = group * width
    a = curves_cdf.ravel()[base + lo]
    b = curves_cdf.ravel()[base + hi]
    u = a + rng.random(len(group)) * (b - a)
    idx = np.searchsorted(flat, 2.0 * group + u, side="right") - 1
    return np.clip(idx - base, lo, hi - 1)


def _seconds_of_day(rng, n: int) -> np.ndarray:
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return hours * 3600 + rng.integers(0, 3600, n)


def _persona_array(key: str) -> np.ndarray:
    """A persona parameter for every persona: shape (personas,) or (personas, k)."""
    return np.array([_P[p][key] for p in PERSONAS], dtype=float)


_persona_matrix = _persona_array


def _canonical(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """A table with every non-provenance canonical column, in schema order, typed."""
    types = {
        "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(),
        "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    table = get_table(name)
    unknown = set(columns) - set(table.column_names)
    if unknown:
        raise ValueError(f"{name}: unknown columns {sorted(unknown)}")
    n = len(next(iter(columns.values())))
    arrays, names = [], []
    for col in table.columns:
        if col.name in ("ingest_id", "source_row"):
            continue
        typ = types[col.dtype]
        arr = columns.get(col.name)
        if arr is None:
            arr = pa.nulls(n, typ)
        elif not isinstance(arr, (pa.Array, pa.ChunkedArray)):
            arr = pa.array(arr, type=typ)
        elif arr.type != typ:
            arr = arr.cast(typ)
        arrays.append(arr)
        names.append(col.name)
    return pa.Table.from_arrays(arrays, names=names)


def _parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


def make_store(
    n_customers: int = 10_000,
    seed: int = 0,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
) -> DemoStore:
    """Draw a complete demo shop with planted personas.

    Parameters
    ----------
    n_customers : int, default=10_000
        Registered customers (guest orders come on top, about 1% of orders).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the same seed gives identical tables.
    start, end : str, default "2023-01-01", "2024-12-31"
        First and last day of trading (ISO dates, inclusive). At least 400 days
        apart, so that lapsed customers can be silent for 9+ months.

    Returns
    -------
    DemoStore
        One pyarrow Table per canonical table plus the ground truth.

    Examples
    --------
    >>> demo = make_store(2_000, seed=1)
    >>> demo.customers.num_rows
    2000
    """
    if n_customers < len(PERSONAS) * 10:
        raise ValueError(f"n_customers must be at least {len(PERSONAS) * 10}, got {n_customers}")
    d_start, d_end = _parse_date(start), _parse_date(end)
    n_days = (d_end - d_start).days + 1
    if n_days < 400:
        raise ValueError(f"start {d_start} and end {d_end} must be at least 400 days apart")
    rng = np.random.default_rng(seed)
    g = _Gen(rng, n_customers, d_start, d_end)
    return g.run(seed)


class _Gen:
    """One run of the generator; methods fill the tables in dependency order."""

    def __init__(self, rng: np.random.Generator, n: int, start: dt.date, end: dt.date):
        self.rng, self.n, self.start, self.end = rng, n, start, end
        self.D = (end - start).days + 1
        self.start_day = (start - dt.date(1970, 1, 1)).days  # days since epoch
        self.t0 = self.start_day * _DAY  # seconds since epoch of start, 00:00 UTC
        curves = _day_curves(start, self.D)
        cdf = np.zeros((len(PERSONAS), self.D + 1))
        np.cumsum(curves, axis=1, out=cdf[:, 1:])
        self.cdf = cdf / cdf[:, -1:]
        self.campaign_start = self.D - 335
        self.campaign_days = 28

    # -- orchestration -----------------------------------------------------------------
    def run(self, seed: int) -> DemoStore:
        self.customers()
        self.products()
        self.base_orders()
        self.campaigns_and_email()
        self.orders_and_lines()
        self.browsing()
        self.surveys()
        last = int(self.order_sec.max()) // _DAY if len(self.order_sec) else self.start_day + self.D - 1
        as_of = dt.date(1970, 1, 1) + dt.timedelta(days=last + 1)
        rates = _canonical("currency_rates", {
            "currency": pa.array(list(CURRENCY_RATES)),
            "rate": pa.array(list(CURRENCY_RATES.values()), pa.float64()),
        })
        return DemoStore(
            customers=self.t_customers, products=self.t_products, orders=self.t_orders,
            order_items=self.t_items, browsing_events=self.t_browsing, email_events=self.t_email,
            survey_responses=self.t_surveys, campaigns=self.t_campaigns,
            campaign_assignments=self.t_assign, currency_rates=rates,
            demo_personas=pa.table({"customer_id": self.cust_ids,
                                    "persona": _take(list(PERSONAS), self.persona)}),
            campaign_truth=self.t_truth, discount_codes=self.t_codes, as_of=as_of,
            seed=seed, start=self.start, end=self.end,
        )

    # -- customers -----------------------------------------------------------------------
    def customers(self) -> None:
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
        upper[P["occasional_gifter"]] = D - 40
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
        bucket = cat * 3 + tier
        u = self.rng.random(len(cat))
        pos = np.searchsorted(self.bucket_cum, bucket + u, side="right")
        pos = np.minimum(pos, len(self.bucket_cum) - 1)
        return self.bucket_products[pos]

    # -- orders (customer level: who orders when) ------------------------------------------
    def base_orders(self) -> None:
        rng, P = self.rng, self.P
        persona, a, b = self.persona, self.active_from, self.active_to
        months = np.maximum(b - a, 1) / 30.44
        rate = _persona_array("orders_pm")[persona]
        n_orders = np.maximum(rng.poisson(rate * months), _persona_array("min_orders")[persona].astype(np.int64))
        n_orders[persona == P["one_time_buyer"]] = 1
        n_orders[persona == P["window_shopper"]] = 0
        cust, _ = _group_index(n_orders)
        p = persona[cust]
        day = _sample_days(rng, self.cdf, p, a[cust], b[cust])
        # Most one-time buyers who sign up during the period buy within days of signing up.
        one = np.flatnonzero((p == P["one_time_buyer"]) & (self.signup[cust] >= 0))
        quick = one[rng.random(len(one)) < 0.6]
        day[quick] = np.minimum(self.signup[cust[quick]] + np.floor(rng.exponential(3.0, len(quick))).astype(np.int64),
                                b[cust[quick]] - 1)
        self.base_cust = cust
        self.base_day = day

    # -- campaigns, assignments and email ---------------------------------------------------
    def campaigns_and_email(self) -> None:
        rng, n, P = self.rng, self.n, self.P
        D = self.D
        camps = []  # (id, name, send_day, length_days, kind, description)
        for year in range(self.start.year, self.end.year + 1):
            for cid, name, date, kind, desc in (
                (f"NL-{year}-SPRING", f"Spring newsletter {year}", dt.date(year, 3, 14), "news",
                 "Seasonal newsletter with new arrivals."),
                (f"SALE-{year}-SUMMER", f"Summer sale {year}", dt.date(year, 6, 20), "sale",
                 "Summer sale announcement, up to 30% off."),
                (f"BF-{year}", f"Black Friday {year}", _black_friday(year), "sale",
                 "Black Friday deals."),
                (f"XMAS-{year}", f"Christmas gift guide {year}", dt.date(year, 12, 5), "gift",
                 "Gift guide for the holidays."),
            ):
                day = (date - self.start).days
                if 14 <= day <= D - 14:
                    camps.append((cid, name, day, 14, kind, desc))
        cs = self.campaign_start
        camps.append((WINBACK_ID, "Win-back voucher", cs, self.campaign_days, "winback",
                      "Randomised win-back test: 15% voucher (WINBACK15) emailed to consenting customers "
                      "without an order in the previous 90 days; about 10% held out as control."))
        camps.sort(key=lambda c: (c[2], c[0]))

        open_p = _persona_array("open_p")
        click_p = _persona_array("click_p")
        unsub_p = _persona_array("unsub_p")
        bad_address = rng.random(n) < 0.012
        suppressed = np.zeros(n, dtype=bool)
        parts = []  # (customer idx, campaign idx, type idx, seconds)
        for k, (cid, _name, day, _len, kind, _desc) in enumerate(camps):
            send = self.t0 + day * _DAY + (9 if kind != "sale" else 7) * 3600
            eligible = self.consent & (self.signup <= day) & ~suppressed
            if kind == "winback":
                recent = np.zeros(n, dtype=bool)
                in_look = (self.base_day >= day - 90) & (self.base_day < day)
                recent[self.base_cust[in_look]] = True
                eligible &= (self.signup <= day - 30) & ~recent
                assigned = np.flatnonzero(eligible)
                control = rng.random(len(assigned)) < 0.10
                self.assigned, self.assigned_control = assigned, control
                recipients = assigned[~control]
            else:
                recipients = np.flatnonzero(eligible)
            m = len(recipients)
            p = self.persona[recipients]
            sent_t = send + rng.integers(0, 7200, m)
            bounce = bad_address[recipients] | (rng.random(m) < 0.002)
            suppressed[recipients[bad_address[recipients]]] = True
            mult = np.ones(m)
            if kind == "gift":
                mult[p == P["occasional_gifter"]] = 2.0
            if kind == "sale":
                mult[p == P["bargain_hunter"]] = 1.4
            if kind == "winback":
                mult[p == P["lapsed"]] = 2.0
            opened = ~bounce & (rng.random(m) < np.minimum(open_p[p] * mult, 0.95))
            open_t = sent_t + np.minimum(rng.lognormal(np.log(3 * 3600), 1.2, m), 6 * _DAY).astype(np.int64)
            clicked = opened & (rng.random(m) < click_p[p])
            click_t = open_t + 5 + rng.exponential(90, m).astype(np.int64)
            unsub = opened & (rng.random(m) < np.minimum(unsub_p[p] / np.maximum(open_p[p], 0.05), 1.0))
            unsub_t = open_t + 10 + rng.exponential(60, m).astype(np.int64)
            suppressed[recipients[unsub]] = True
            for typ, mask, t in ((0, slice(None), sent_t), (3, bounce, sent_t + 2 + rng.integers(0, 30, m)),
                                 (1, opened, open_t), (2, clicked, click_t), (4, unsub, unsub_t)):
                rows = recipients[mask]
                parts.append((rows, np.full(len(rows), k), np.full(len(rows), typ), t[mask]))
        cust = np.concatenate([x[0] for x in parts])
        camp = np.concatenate([x[1] for x in parts])
        typ = np.concatenate([x[2] for x in parts])
        sec = np.concatenate([x[3] for x in parts])
        order = np.lexsort((typ, cust, sec))
        cust, camp, typ, sec = cust[order], camp[order], typ[order], sec[order]
        camp_ids = [c[0] for c in camps]
        self.t_email = _canonical("email_events", {
            "event_id": _fixed_ids("EM", np.arange(1, len(cust) + 1), 10),
            "customer_id": self.cust_ids.take(pa.array(cust)),
            "email": self.email.take(pa.array(cust)),
            "campaign_id": _take(camp_ids, camp),
            "event_time": _ts(sec),
            "event_type": _take(["sent", "open", "click", "bounce", "unsubscribe"], typ),
        })
        self.t_campaigns = _canonical("campaigns", {
            "campaign_id": pa.array(camp_ids),
            "name": pa.array([c[1] for c in camps]),
            "channel": pa.array(["email"] * len(camps)),
            "start_time": _ts(np.array([self.t0 + c[2] * _DAY + (9 if c[4] != "sale" else 7) * 3600 for c in camps])),
            "end_time": _ts(np.array([self.t0 + (c[2] + c[3]) * _DAY for c in camps])),
            "description": pa.array([c[5] for c in camps]),
        })
        assigned_t = self.t0 + cs * _DAY + 6 * 3600 + np.zeros(len(self.assigned), dtype=np.int64)
        self.t_assign = _canonical("campaign_assignments", {
            "campaign_id": pa.array([WINBACK_ID] * len(self.assigned)),
            "customer_id": self.cust_ids.take(pa.array(self.assigned)),
            "arm": _take(["treatment", "control"], self.assigned_control.astype(np.int64)),
            "assigned_at": _ts(assigned_t),
        })
        self._campaign_effect()

    def _campaign_effect(self) -> None:
        """Extra orders for treated customers, with a known persona-specific lift."""
        rng, n = self.rng, self.n
        cs, length = self.campaign_start, self.campaign_days
        in_window = np.zeros(n, dtype=bool)
        w = (self.base_day >= cs) & (self.base_day < cs + length)
        in_window[self.base_cust[w]] = True
        assigned, control = self.assigned, self.assigned_control
        pa_ = self.persona[assigned]
        lift = _persona_array("lift")
        rows = []
        extra_cust = []
        for k, name in enumerate(PERSONAS):
            sel = pa_ == k
            n_t, n_c = int((sel & ~control).sum()), int((sel & control).sum())
            no_base = 1.0 - in_window[assigned[sel]].mean() if sel.any() else 1.0
            q = min(1.0, lift[k] / no_base) if no_base > 0 else 0.0
            cand = assigned[sel & ~control]
            cand = cand[~in_window[cand]]
            conv = cand[rng.random(len(cand)) < q]
            extra_cust.append(conv)
            rows.append((name, float(lift[k]), len(conv) / n_t if n_t else 0.0, n_t, n_c))
        extra = np.concatenate(extra_cust)
        extra.sort()
        self.extra_cust = extra
        self.extra_day = cs + np.minimum(np.floor(rng.exponential(5.0, len(extra))).astype(np.int64), length - 1)
        ws = self.start + dt.timedelta(days=cs)
        we = self.start + dt.timedelta(days=cs + length)
        self.t_truth = pa.table({
            "campaign_id": pa.array([WINBACK_ID] * len(rows)),
            "persona": pa.array([r[0] for r in rows]),
            "lift": pa.array([r[1] for r in rows], pa.float64()),
            "realized_lift": pa.array([r[2] for r in rows], pa.float64()),
            "n_treatment": pa.array([r[3] for r in rows], pa.int64()),
            "n_control": pa.array([r[4] for r in rows], pa.int64()),
            "window_start": pa.array([ws] * len(rows), pa.date32()),
            "window_end": pa.array([we] * len(rows), pa.date32()),
        })

    # -- orders and lines --------------------------------------------------------------------
    def orders_and_lines(self) -> None:
        rng, P = self.rng, self.P
        one = P["one_time_buyer"]
        # Registered orders: base + campaign extras.
        cust = np.concatenate([self.base_cust, self.extra_cust])
        day = np.concatenate([self.base_day, self.extra_day])
        is_extra = np.zeros(len(cust), dtype=bool)
        is_extra[len(self.base_cust):] = True
        n_reg = len(cust)
        del self.base_cust, self.base_day, self.extra_day
        # Guest orders (~1%): no customer id; behave like one-time buyers.
        n_guest = max(1, int(round(n_reg * 0.011)))
        g_day = _sample_days(rng, self.cdf, np.full(n_guest, one), np.zeros(n_guest, np.int64),
                             np.full(n_guest, self.D, np.int64))
        guest_of = rng.integers(0, max(1, int(n_guest * 0.9)), n_guest)  # some guests buy twice
        n_guest_people = int(guest_of.max()) + 1
        langs = sorted(_NAMES)
        fa = [_ascii(x) for lg in langs for x in _NAMES[lg][0] + _NAMES[lg][1]]
        la = [_ascii(x) for lg in langs for x in _NAMES[lg][2]]
        guest_emails = self._emails(_take(fa, rng.integers(0, len(fa), n_guest_people)),
                                    _take(la, rng.integers(0, len(la), n_guest_people)),
                                    "example.net", n_guest_people)
        cw = np.array([_COUNTRIES[c][0] for c in self.country_codes])
        g_country = rng.choice(len(cw), n_guest_people, p=cw / cw.sum())

        all_day = np.concatenate([day, g_day])
        sec = self.t0 + all_day * _DAY + _seconds_of_day(rng, len(all_day))
        # Chronological order numbers, like a shop's order counter.
        order = np.argsort(sec, kind="stable")
        sec = sec[order]
        owner = np.concatenate([cust, np.full(n_guest, -1)])[order]
        guest_idx = np.concatenate([np.full(n_reg, -1), guest_of])[order]
        is_extra = np.concatenate([is_extra, np.zeros(n_guest, dtype=bool)])[order]
        is_guest = owner < 0
        persona = np.where(is_guest, one, self.persona[np.maximum(owner, 0)])
        country = np.where(is_guest, g_country[np.maximum(guest_idx, 0)], self.country[np.maximum(owner, 0)])
        cur_of_country = np.array([CURRENCIES.index(_COUNTRIES[c][1]) for c in self.country_codes])
        currency = cur_of_country[country]
        n_orders = len(sec)
        self.order_sec = sec
        self.order_owner = owner
        del cust, day, all_day, order, country

        # Status, channel, discount.
        u = rng.random(n_orders)
        cancel_p = _persona_array("cancel_p")[persona]
        return_p = _persona_array("return_p")[persona]
        status = np.where(u < cancel_p, 1, np.where(u < cancel_p + return_p, 2, 0))
        app = rng.random(n_orders) < _persona_array("app_p")[persona]
        pct_probs = np.array([[_P[p]["disc_pct"].get(x, 0.0) for x in _DISC_PCTS] for p in PERSONAS])
        has_disc = (rng.random(n_orders) < _persona_array("disc_p")[persona]) | is_extra
        pct = np.array(_DISC_PCTS)[_pick(rng, persona, pct_probs)]
        pct[is_extra] = 15
        pct = np.where(has_disc, pct, 0)
        prefix = rng.integers(0, 3, n_orders)
        prefix[persona == one] = 3
        prefix[is_extra] = 4
        code_idx = prefix * len(_DISC_PCTS) + np.searchsorted(_DISC_PCTS, np.maximum(pct, 10))
        code_vocab = [f"{p}{x}" for p in _DISC_PREFIXES for x in _DISC_PCTS]

        # Lines.
        k = 1 + np.minimum(rng.poisson(_persona_array("extra_lines")[persona]), 7)
        line_order, line_rank = _group_index(k)
        lp = persona[line_order]
        cat = _pick(rng, lp, _persona_matrix("cats"))
        tier = _pick(rng, lp, _persona_matrix("tiers"))
        prod = self._choose_products(cat, tier).astype(np.int32)
        del cat, tier
        qty = (1 + _pick(rng, lp, _persona_matrix("qty"))).astype(np.float64)
        del lp
        grocery = self.prod_cat[prod] == CATEGORIES.index("grocery")
        qty[grocery] += rng.integers(0, 3, int(grocery.sum()))  # a few packs at once
        del grocery
        unit = self.prod_price_cur[currency[line_order], prod]
        amount = np.round(qty * unit, 2)
        subtotal = np.round(np.bincount(line_order, weights=amount, minlength=n_orders), 2)
        discount = np.round(subtotal * pct / 100.0, 2)
        total = np.round(subtotal - discount, 2)
        del subtotal
        self.line_prod, self.order_k = prod, k

        order_ids = _number_ids("O", np.arange(1001, 1001 + n_orders))
        self.order_ids = order_ids
        owner0 = np.maximum(owner, 0)
        email = pc.if_else(pa.array(is_guest), guest_emails.take(pa.array(np.maximum(guest_idx, 0))),
                           self.email.take(pa.array(owner0)))
        self.t_orders = _canonical("orders", {
            "order_id": order_ids,
            "customer_id": self.cust_ids.take(pa.array(owner0, mask=is_guest)),
            "email": email,
            "order_time": _ts(sec),
            "status": _take(["completed", "cancelled", "returned"], status),
            "currency": _take(list(CURRENCIES), currency),
            "total": pa.array(total),
            "discount": pa.array(discount),
            "channel": _take(["web", "app"], app.astype(np.int64)),
        })
        self.t_codes = pa.table({
            "order_id": order_ids,
            "discount_code": _take(code_vocab, code_idx, mask=~has_disc),
        })
        self.t_items = _canonical("order_items", {
            "order_id": order_ids.take(pa.array(line_order)),
            "line_number": pa.array((line_rank + 1).astype(np.int32)),
            "product_id": self.prod_ids.take(pa.array(prod)),
            "product_name": self.prod_names.take(pa.array(prod)),
            "category": self.cat_names.take(pa.array(self.prod_cat[prod])),
            "quantity": pa.array(qty),
            "unit_price": pa.array(unit),
            "line_amount": pa.array(amount),
        })

    # -- browsing ----------------------------------------------------------------------------
    def browsing(self) -> None:
        rng, n, P, D = self.rng, self.n, self.P, self.D
        persona = self.persona
        n_personas = len(PERSONAS)
        # Each customer has a web and an app device id; visitors who never register have one.
        n_visitor_sessions = int(n * 0.08)
        n_visitors = max(1, int(n_visitor_sessions * 0.7))
        anon_ids = _fixed_ids("", _scrambled(rng, 2 * n + n_visitors), 16, base=16)

        # Browse-only sessions of customers.
        a = self.active_from
        b = np.where(persona == P["lapsed"], np.minimum(self.active_to + 90, D), D)
        months = np.maximum(b - a, 1) / 30.44
        s_count = rng.poisson(_persona_array("sessions_pm")[persona] * months)
        ws = persona == P["window_shopper"]
        s_count[ws] = np.maximum(s_count[ws], 2)
        b_cust, b_rank = _group_index(s_count)
        b_p = persona[b_cust]
        b_day = _sample_days(rng, self.cdf, b_p, a[b_cust], b[b_cust])
        b_start = self.t0 + b_day * _DAY + _seconds_of_day(rng, len(b_cust))
        b_views = 1 + rng.poisson(_persona_array("views")[b_p] - 1)
        b_adds = rng.binomial(b_views, _persona_array("add_p")[b_p])
        mode = rng.choice(3, len(b_cust), p=[0.5, 0.25, 0.25])  # logged in / logs in / anonymous
        first_ws = ws[b_cust] & (b_rank == 0)  # every window shopper has a logged-in cart add
        mode[first_ws] = 0
        b_adds[first_ws] = np.maximum(b_adds[first_ws], 1)
        b_ck = (b_adds > 0) & (rng.random(len(b_cust)) < _persona_array("checkout_p")[b_p])
        b_device = b_cust * 2 + (rng.random(len(b_cust)) < _persona_array("app_p")[b_p])

        # Purchase sessions: ~6% of registered orders are tracked end to end.
        reg = np.flatnonzero(self.order_owner >= 0)
        tracked = reg[rng.random(len(reg)) < 0.06]
        t_cust = self.order_owner[tracked]
        t_p = persona[t_cust]
        t_views = np.minimum(self.order_k[tracked], 3)
        t_mode = np.where(rng.random(len(tracked)) < 0.6, 0, 1)
        t_device = t_cust * 2 + (rng.random(len(tracked)) < _persona_array("app_p")[t_p])

        # Visitors who never register.
        v_owner = rng.integers(0, n_visitors, n_visitor_sessions)
        v_day = _sample_days(rng, self.cdf, np.zeros(n_visitor_sessions, np.int64),
                             np.zeros(n_visitor_sessions, np.int64), np.full(n_visitor_sessions, D, np.int64))
        v_start = self.t0 + v_day * _DAY + _seconds_of_day(rng, n_visitor_sessions)
        v_views = 1 + rng.poisson(1.5, n_visitor_sessions)
        v_adds = rng.binomial(v_views, 0.1)

        # All sessions together.
        cust = np.concatenate([b_cust, t_cust, np.full(n_visitor_sessions, -1)])
        sp = np.concatenate([b_p, t_p, np.full(n_visitor_sessions, n_personas)])  # visitors: own group
        views = np.concatenate([b_views, t_views, v_views]).astype(np.int32)
        adds = np.concatenate([b_adds, t_views, v_adds]).astype(np.int32)
        checkout = np.concatenate([b_ck, np.ones(len(tracked), bool), np.zeros(n_visitor_sessions, bool)])
        purchase = np.concatenate([np.zeros(len(b_cust), bool), np.ones(len(tracked), bool),
                                   np.zeros(n_visitor_sessions, bool)])
        mode = np.concatenate([mode, t_mode, np.full(n_visitor_sessions, 2)])
        device = np.concatenate([b_device, t_device, 2 * n + v_owner])
        anchor = np.concatenate([b_start, self.order_sec[tracked], v_start])
        search_entry = rng.random(len(cust)) < 0.3
        # Products of purchase sessions are the order's lines.
        line_start = np.cumsum(self.order_k) - self.order_k
        n_b = len(b_cust)

        # Sort sessions by (approximate) start time.
        order = np.argsort(anchor, kind="stable")
        cust, sp, views, adds = cust[order], sp[order], views[order], adds[order]
        checkout, purchase, mode, device = checkout[order], purchase[order], mode[order], device[order]
        anchor, search_entry = anchor[order], search_entry[order]
        src = order  # position in the concatenation before sorting
        S = len(cust)

        # Session category preference and products for every view.
        cat_w = np.vstack([_persona_matrix("cats"), _persona_matrix("cats").mean(axis=0)])
        tier_w = np.vstack([_persona_matrix("tiers"), np.array([[0.35, 0.45, 0.2]])])
        s_cat = _pick(rng, sp, cat_w)
        v_sess, v_rank = _group_index(views)
        stay = rng.random(len(v_sess)) < 0.75  # most views stay in the session's category
        v_cat = np.where(stay, s_cat[v_sess], _pick(rng, sp[v_sess], cat_w))
        v_prod = self._choose_products(v_cat, _pick(rng, sp[v_sess], tier_w))
        is_pur = purchase[v_sess]
        if is_pur.any():
            tracked_pos = src[v_sess[is_pur]] - n_b  # index into `tracked`
            v_prod[is_pur] = self.line_prod[line_start[tracked[tracked_pos]] + v_rank[is_pur]]
        s_first_cat = np.where(views > 0, self.prod_cat[v_prod[np.cumsum(views) - views]], s_cat)

        del stay, v_cat, is_pur
        # Event rows, laid out per session without sorting: entry (page_view or search),
        # the views, the cart adds (of the first viewed products), login, checkout, purchase.
        login = (mode == 1).astype(np.int32)
        ck = checkout.astype(np.int32)
        pu = purchase.astype(np.int32)
        counts = 1 + views + adds + login + ck + pu
        E = int(counts.sum())
        first = np.cumsum(counts, dtype=np.int64) - counts
        e_sess = np.repeat(np.arange(S, dtype=np.int32), counts)
        r = (np.arange(E, dtype=np.int64) - first[e_sess]).astype(np.int32)
        ev = views[e_sess]
        ea = adds[e_sess]
        # 0 page_view, 1 product_view, 2 add_to_cart, 3 checkout_start, 4 purchase, 5 search, 6 login
        e_type = np.full(E, 1, dtype=np.int8)
        e_type[r > ev] = 2
        tail = r > ev + ea
        rt = r - ev - ea  # 1-based position in the tail (login, checkout, purchase)
        lg, eck = login[e_sess], ck[e_sess]
        e_type[tail & (rt == 1) & (lg == 1)] = 6
        e_type[tail & (rt == lg + 1) & (eck == 1)] = 3
        e_type[tail & (rt == lg + eck + 1) & (pu[e_sess] == 1)] = 4
        del tail, rt, lg, eck
        is_entry = r == 0
        is_search = is_entry & search_entry[e_sess]
        e_type[is_entry] = 0
        e_type[is_search] = 5
        del is_entry
        has_prod = (e_type == 1) | (e_type == 2)
        j = np.where(e_type == 2, r - 1 - ev, r - 1)
        vstart = np.cumsum(views, dtype=np.int64) - views
        e_prod = np.full(E, -1, dtype=np.int32)
        e_prod[has_prod] = v_prod[vstart[e_sess[has_prod]] + j[has_prod]]
        del j, ev, ea, has_prod
        # Times: a few seconds to minutes between events; purchase sessions end at the order.
        gaps = (rng.exponential(40.0, E) + 3).astype(np.int64)
        gaps[first] = 0
        cum = np.cumsum(gaps)
        del gaps
        cum -= np.repeat(cum[first], counts)
        dur = cum[first + counts - 1]
        start = np.where(purchase, anchor - dur, anchor)
        e_sec = np.repeat(start, counts) + cum
        del cum
        e_cat = np.where(e_prod >= 0, self.prod_cat[np.maximum(e_prod, 0)], -1).astype(np.int32)
        e_cat[is_search] = s_first_cat[e_sess[is_search]]
        q_idx = np.full(E, -1, dtype=np.int32)
        q_idx[is_search] = e_cat[is_search] * 4 + rng.integers(0, 4, int(is_search.sum()))
        del is_search
        queries = [q for c in CATEGORIES for q in _SEARCH[c]]
        types = ["page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "search", "login"]
        # Identity: logged-in sessions carry the customer id throughout; in "logs in"
        # sessions it appears from the login event on; anonymous sessions never have it.
        e_mode = mode[e_sess]
        e_cust = cust[e_sess]
        known = (e_cust >= 0) & ((e_mode == 0) | ((e_mode == 1) & (r > views[e_sess] + adds[e_sess])))
        del e_mode, r
        cols = {}
        cols["event_id"] = _fixed_ids("BE", np.arange(1, E + 1), 10)
        cols["session_id"] = _fixed_ids("", _scrambled(rng, S), 16, base=16).take(pa.array(e_sess))
        cols["customer_id"] = self.cust_ids.take(pa.array(np.maximum(e_cust, 0), mask=~known))
        del e_cust, known
        cols["anonymous_id"] = anon_ids.take(pa.array(device[e_sess]))
        del e_sess
        cols["event_time"] = _ts(e_sec)
        del e_sec
        cols["event_type"] = _take(types, e_type)
        cols["product_id"] = self.prod_ids.take(pa.array(np.maximum(e_prod, 0), mask=e_prod < 0))
        cols["category"] = self.cat_names.take(pa.array(np.maximum(e_cat, 0), mask=e_cat < 0))
        cols["search_query"] = _take(queries, np.maximum(q_idx, 0), mask=q_idx < 0)
        self.t_browsing = _canonical("browsing_events", cols)

    # -- surveys -----------------------------------------------------------------------------
    def surveys(self) -> None:
        rng, n = self.rng, self.n
        persona = self.persona
        resp = np.flatnonzero(rng.random(n) < _persona_array("survey_p")[persona])
        m = len(resp)
        p = persona[resp]
        a = self.active_from[resp]
        b = np.minimum(self.active_to[resp] + 30, self.D)
        day = a + np.floor(rng.random(m) * np.maximum(b - a, 1)).astype(np.int64)
        sec = self.t0 + day * _DAY + _seconds_of_day(rng, m)
        mu, sd = _persona_matrix("nps").T
        nps = np.clip(np.round(rng.normal(mu[p], sd[p])), 0, 10).astype(np.int32)
        sat = np.clip(np.round(1 + nps * 0.4 + rng.normal(0, 0.6, m)), 1, 5).astype(np.int32)
        # Interests: 1-3 categories, drawn without replacement from the persona's preferences.
        cats = _persona_matrix("cats")[p]
        keys = np.log(cats) + rng.gumbel(size=cats.shape)
        top = np.argsort(-keys, axis=1)[:, :3]
        k = rng.integers(1, 4, m)
        sel = np.arange(3)[None, :] < k[:, None]
        values = _take(self.cat_names, top[sel])
        offsets = np.zeros(m + 1, dtype=np.int32)
        np.cumsum(k, out=offsets[1:])
        lists = pa.ListArray.from_arrays(pa.array(offsets), values)
        order = np.argsort(sec, kind="stable")
        self.t_surveys = _canonical("survey_responses", {
            "response_id": _fixed_ids("R", np.arange(1, m + 1), 6),
            "customer_id": self.cust_ids.take(pa.array(resp[order])),
            "email": self.email.take(pa.array(resp[order])),
            "response_time": _ts(sec[order]),
            "nps": pa.array(nps[order]),
            "satisfaction": pa.array(sat[order]),
            "interests": pc.binary_join(lists, ",").take(pa.array(order)),
        })


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_demo(store, demo: DemoStore) -> None:
    """Write every table of ``demo`` straight into ``store`` (one transaction).

    The fast path for benchmarks and examples: no ingestion, no cleaning. The
    ground truth ``demo_personas`` is loaded too. The store's canonical tables
    must be empty.
    """
    names = list(TABLE_NAMES) + ["demo_personas"]
    busy = [t for t in names if store.count(t) > 0]
    if busy:
        raise ValueError(f"load_demo needs empty tables; already filled: {', '.join(busy)}")
    with store.transaction():
        for name, table in demo.tables().items():
            store.append(name, table)
        store.append("demo_personas", demo.demo_personas)
