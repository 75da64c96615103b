"""The demo store's vocabulary and the parameters of its personas.

Plain data, no randomness: the six personas and their behaviour parameters
(``_P``), the product catalogue's categories, tiers, brands and names,
countries with their cities and postal-code formats, first and last names per
language, and the table names and ids the rest of the package uses.
"""

from __future__ import annotations

import unicodedata

import numpy as np

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

# Per-persona parameters. Category weights follow CATEGORIES, tier weights TIERS,
# channel weights CHANNELS, quantity weights 1/2/3 units. Rates are per 30.44-day
# month. before_p: share who signed up before trading starts; extra_lines: mean
# lines per order beyond the first; *_p: probabilities; age and nps: (mean, sd);
# lift: designed absolute lift of the win-back campaign; season_p (gifters only): chance of
# an order in each gift season. The personas are planted to be separable on the default
# clustering features: repeat buyers mostly signed up before trading (order counts do not
# spread with tenure), one-time buyers' single order completes and mostly used the welcome
# code, gifters buy big baskets once per gift season.
_P = {
    "loyal_premium": dict(
        before_p=0.9, share=0.08, cats=(6, 5, 3, 4, 2, 1, 1, 1, 1, 3), tiers=(0.04, 0.28, 0.68),
        orders_pm=1.1, min_orders=3, extra_lines=1.8, qty=(0.86, 0.11, 0.03),
        disc_p=0.08, disc_pct={10: 0.5, 15: 0.5}, return_p=0.045, cancel_p=0.02, app_p=0.6,
        sessions_pm=0.1, views=3.0, add_p=0.35, checkout_p=0.3,
        open_p=0.55, click_p=0.35, unsub_p=0.002, loyalty_p=0.8, consent_p=0.88,
        age=(42, 10), channels=(3, 1, 1, 2, 2, 0.3, 0.2), nps=(9.0, 1.2), survey_p=0.06,
        lift=0.03, female_p=0.5,
    ),
    "bargain_hunter": dict(
        before_p=0.9, share=0.17, cats=(1, 3, 4, 3, 2, 1, 2, 5, 1, 0.3), tiers=(0.72, 0.24, 0.04),
        orders_pm=0.55, min_orders=2, extra_lines=1.0, qty=(0.6, 0.28, 0.12),
        disc_p=0.85, disc_pct={10: 0.2, 15: 0.25, 20: 0.3, 25: 0.15, 30: 0.1},
        return_p=0.07, cancel_p=0.04, app_p=0.45,
        sessions_pm=0.08, views=4.0, add_p=0.3, checkout_p=0.25,
        open_p=0.38, click_p=0.4, unsub_p=0.004, loyalty_p=0.4, consent_p=0.8,
        age=(33, 10), channels=(1, 2, 3, 1, 0.5, 3, 1), nps=(7.0, 1.8), survey_p=0.03,
        lift=0.09, female_p=0.55,
    ),
    "one_time_buyer": dict(
        before_p=0.4, share=0.25, cats=(3, 4, 2, 2, 1.5, 2, 1, 0.5, 0.5, 1), tiers=(0.45, 0.5, 0.05),
        orders_pm=0.0, min_orders=1, extra_lines=0.3, qty=(0.9, 0.08, 0.02),
        disc_p=0.7, disc_pct={10: 1.0}, return_p=0.0, cancel_p=0.0, app_p=0.2,
        sessions_pm=0.02, views=3.0, add_p=0.2, checkout_p=0.2,
        open_p=0.12, click_p=0.12, unsub_p=0.012, loyalty_p=0.05, consent_p=0.62,
        age=(38, 14), channels=(1, 3, 3, 0.3, 0.5, 1, 1), nps=(6.0, 2.5), survey_p=0.015,
        lift=0.0, female_p=0.5,
    ),
    "lapsed": dict(
        before_p=0.95, share=0.18, cats=(1, 2, 3, 1, 3, 4, 1, 1, 3, 0.5), tiers=(0.25, 0.55, 0.2),
        orders_pm=0.8, min_orders=2, extra_lines=0.9, qty=(0.85, 0.12, 0.03),
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
        before_p=0.9, share=0.17, cats=(1.5, 1, 1, 3, 0.5, 3, 6, 0.3, 0.3, 2), tiers=(0.05, 0.45, 0.5),
        orders_pm=0.0, min_orders=2, season_p=0.9, extra_lines=2.5, qty=(0.8, 0.15, 0.05),
        disc_p=0.1, disc_pct={10: 0.4, 15: 0.3, 20: 0.3}, return_p=0.01, cancel_p=0.005, app_p=0.2,
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


def _persona_array(key: str) -> np.ndarray:
    """A persona parameter for every persona.

    Parameters
    ----------
    key : str
        A key of the per-persona parameters ``_P`` (for example ``"share"`` or ``"cats"``).

    Returns
    -------
    numpy.ndarray
        Shape ``(personas,)`` for a scalar parameter, ``(personas, k)`` for a
        tuple-valued one, in the order of :data:`PERSONAS`.
    """
    return np.array([_P[p][key] for p in PERSONAS], dtype=float)


_persona_matrix = _persona_array


def _ascii(name: str) -> str:
    """``name`` in lower-case ASCII letters and digits only, for email addresses."""
    s = name.replace("ß", "ss").replace("ł", "l").replace("Ł", "L")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(ch for ch in s.lower() if ch.isalnum())

