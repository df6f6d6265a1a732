//! Sample restaurants for an empty store, so a new user sees data at once.
//!
//! Seed rows have fixed ids, so replicas that start together on one empty
//! store add each row once: a second insert of the same id changes nothing.

use crate::{
    domain::{NewMenuItem, NewRestaurant},
    store::RestaurantStore,
};
use dishpatch::{
    error::ServiceError,
    ids::{MENU_ITEM, RESTAURANT},
};
use uuid::Uuid;

/// (name, cuisine, address, rating, menu of (name, description, price in cents, available)).
type SeedRestaurant = (&'static str, &'static str, &'static str, f64, &'static [SeedItem]);
type SeedItem = (&'static str, &'static str, i64, bool);

const RESTAURANTS: &[SeedRestaurant] = &[
    (
        "Trattoria Lucia",
        "italian",
        "12 Via Roma, Springfield",
        4.6,
        &[
            (
                "Margherita Pizza",
                "San Marzano tomato, fior di latte, basil",
                1150,
                true,
            ),
            (
                "Spaghetti Carbonara",
                "Guanciale, egg yolk, pecorino, black pepper",
                1395,
                true,
            ),
            (
                "Lasagna al Forno",
                "Slow-cooked beef ragù and béchamel",
                1450,
                true,
            ),
            (
                "Truffle Risotto",
                "Seasonal black truffle; back in autumn",
                2200,
                false,
            ),
            ("Tiramisu", "Mascarpone, espresso, cocoa", 650, true),
        ],
    ),
    (
        "Sakura Sushi Bar",
        "japanese",
        "88 Cherry Lane, Springfield",
        4.7,
        &[
            (
                "Salmon Nigiri (2 pieces)",
                "Scottish salmon over seasoned rice",
                550,
                true,
            ),
            ("California Roll", "Crab, avocado, cucumber, tobiko", 895, true),
            ("Spicy Tuna Roll", "Tuna, chili mayo, scallion", 1050, true),
            (
                "Chicken Katsu Don",
                "Crisp chicken cutlet and egg over rice",
                1395,
                true,
            ),
            ("Miso Soup", "Tofu, wakame, scallion", 350, true),
        ],
    ),
    (
        "El Fogón",
        "mexican",
        "301 Market Street, Springfield",
        4.4,
        &[
            (
                "Tacos al Pastor (3)",
                "Marinated pork, pineapple, onion, cilantro",
                1095,
                true,
            ),
            (
                "Chicken Burrito",
                "Rice, black beans, pico de gallo, crema",
                1195,
                true,
            ),
            ("Guacamole & Chips", "Made to order", 695, true),
            ("Churros", "Cinnamon sugar, chocolate sauce", 550, true),
        ],
    ),
    (
        "Bombay Spice",
        "indian",
        "47 Station Road, Springfield",
        4.5,
        &[
            (
                "Butter Chicken",
                "Tandoori chicken in a tomato and butter sauce",
                1495,
                true,
            ),
            ("Palak Paneer", "Cottage cheese in spiced spinach", 1295, true),
            ("Garlic Naan", "From the tandoor", 350, true),
            (
                "Vegetable Samosas (2)",
                "Potato and pea, tamarind chutney",
                595,
                true,
            ),
            ("Mango Lassi", "Yoghurt, Alphonso mango", 450, true),
        ],
    ),
    (
        "The Burger Joint",
        "american",
        "9 Elm Avenue, Springfield",
        4.2,
        &[
            (
                "Classic Cheeseburger",
                "Beef patty, cheddar, pickles, house sauce",
                1095,
                true,
            ),
            (
                "Bacon BBQ Burger",
                "Smoked bacon, onion rings, barbecue sauce",
                1295,
                true,
            ),
            ("Fries", "Skin-on, sea salt", 395, true),
            ("Chocolate Milkshake", "Made with vanilla ice cream", 595, true),
        ],
    ),
    (
        "Pho Saigon",
        "vietnamese",
        "220 River Road, Springfield",
        4.6,
        &[
            ("Pho Bo", "Beef noodle soup, 12-hour broth", 1295, true),
            ("Banh Mi", "Lemongrass pork, pickled carrot, cilantro", 895, true),
            ("Fresh Spring Rolls (2)", "Shrimp, herbs, peanut sauce", 650, true),
            ("Vietnamese Iced Coffee", "Condensed milk", 450, true),
        ],
    ),
];

/// Fixed ids that sort before every generated id, in seed order.
fn seed_id(restaurant: usize, item: Option<usize>) -> Uuid {
    let item = item.map_or(0, |item| item + 1);
    Uuid::from_u128(0x0000_0000_0000_7000_8000_5eed_0000_0000 | ((restaurant as u128) << 16) | item as u128)
}

/// Adds the sample restaurants and menus if the store has no restaurant.
pub(crate) async fn seed_if_empty(store: &RestaurantStore) -> Result<(), sqlx::Error> {
    if !store.is_empty().await? {
        return Ok(());
    }
    for (index, &(name, cuisine, address, rating, menu)) in RESTAURANTS.iter().enumerate() {
        let restaurant = NewRestaurant {
            name: name.into(),
            cuisine: cuisine.into(),
            address: address.into(),
            rating,
        };
        let restaurant_id = RESTAURANT.format(seed_id(index, None));
        store_only(
            store
                .insert_restaurant(Some(restaurant_id.clone()), &restaurant, None)
                .await,
        )?;
        for (item_index, &(name, description, price_cents, available)) in menu.iter().enumerate() {
            let item = NewMenuItem {
                name: name.into(),
                description: description.into(),
                price_cents,
                available,
            };
            let item_id = MENU_ITEM.format(seed_id(index, Some(item_index)));
            match store
                .insert_menu_item(Some(item_id), &restaurant_id, &item, None)
                .await
            {
                // Another replica seeding at the same moment added it first.
                Err(ServiceError::AlreadyExists(_)) => {}
                inserted => store_only(inserted)?,
            }
        }
    }
    tracing::info!(
        restaurants = RESTAURANTS.len(),
        "seeded an empty store with sample restaurants"
    );
    Ok(())
}

/// Seeding sends no client input, so any failure is the store's.
fn store_only<T>(result: Result<T, ServiceError>) -> Result<(), sqlx::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(ServiceError::Store(error)) => Err(error),
        Err(other) => Err(sqlx::Error::Protocol(format!("seeding: {other}"))),
    }
}
