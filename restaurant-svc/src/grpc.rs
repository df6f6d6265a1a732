//! The gRPC face of restaurant-svc: checks each request, then delegates.

use crate::{
    catalog::Catalog,
    domain::{MenuItemChanges, NewMenuItem, NewRestaurant, PriceRequest, RestaurantFilter},
    store::RestaurantStore,
};
use dishpatch::proto::restaurant::v1::{self as pb, restaurant_service_server::RestaurantService};
use dishpatch::{call::CallContext, error::ServiceError, ids::RESTAURANT};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `dishpatch.restaurant.v1.RestaurantService` implementation: writes
/// go to the store, reads to the catalog.
#[derive(Debug, Clone)]
pub(crate) struct RestaurantApi {
    store: RestaurantStore,
    catalog: Arc<Catalog>,
}

impl RestaurantApi {
    pub(crate) fn new(store: RestaurantStore, catalog: Catalog) -> Self {
        Self {
            store,
            catalog: Arc::new(catalog),
        }
    }
}

#[tonic::async_trait]
impl RestaurantService for RestaurantApi {
    async fn create_restaurant(
        &self,
        request: Request<pb::CreateRestaurantRequest>,
    ) -> Result<Response<pb::Restaurant>, Status> {
        let deadline = CallContext::of(&request).deadline();
        let restaurant = NewRestaurant::from_request(request.get_ref())?;
        let created = self.store.insert_restaurant(None, &restaurant, deadline).await?;
        tracing::info!(id = created.id, "restaurant created");
        Ok(Response::new(created))
    }

    async fn get_restaurant(
        &self,
        request: Request<pb::GetRestaurantRequest>,
    ) -> Result<Response<pb::Restaurant>, Status> {
        let id = &request.get_ref().id;
        RESTAURANT.check("id", id)?;
        let restaurant = self.catalog.read(|held| held.restaurant(id).cloned()).await??;
        Ok(Response::new(restaurant))
    }

    async fn list_restaurants(
        &self,
        request: Request<pb::ListRestaurantsRequest>,
    ) -> Result<Response<pb::ListRestaurantsResponse>, Status> {
        let filter = RestaurantFilter::from_request(request.get_ref())?;
        let (restaurants, more) = self.catalog.read(|held| held.list(&filter)).await?;
        let next_page_token =
            dishpatch::page::next_token(&restaurants, more, |restaurant| restaurant.id.clone());
        Ok(Response::new(pb::ListRestaurantsResponse {
            restaurants,
            next_page_token,
        }))
    }

    async fn get_menu(&self, request: Request<pb::GetMenuRequest>) -> Result<Response<pb::Menu>, Status> {
        let restaurant_id = request.into_inner().restaurant_id;
        RESTAURANT.check("restaurant_id", &restaurant_id)?;
        let items = self
            .catalog
            .read(|held| {
                let (_, menu) = held.menu(&restaurant_id)?;
                Ok::<_, ServiceError>(menu.values().cloned().collect())
            })
            .await??;
        Ok(Response::new(pb::Menu { restaurant_id, items }))
    }

    async fn add_menu_item(
        &self,
        request: Request<pb::AddMenuItemRequest>,
    ) -> Result<Response<pb::MenuItem>, Status> {
        let deadline = CallContext::of(&request).deadline();
        let request = request.get_ref();
        let item = NewMenuItem::from_request(request)?;
        let added = self
            .store
            .insert_menu_item(None, &request.restaurant_id, &item, deadline)
            .await?;
        tracing::info!(
            id = added.id,
            restaurant_id = added.restaurant_id,
            "menu item added"
        );
        Ok(Response::new(added))
    }

    async fn update_menu_item(
        &self,
        request: Request<pb::UpdateMenuItemRequest>,
    ) -> Result<Response<pb::MenuItem>, Status> {
        let deadline = CallContext::of(&request).deadline();
        let request = request.get_ref();
        let changes = MenuItemChanges::from_request(request)?;
        let updated = self
            .store
            .update_menu_item(&request.restaurant_id, &request.menu_item_id, &changes, deadline)
            .await?;
        tracing::info!(
            id = updated.id,
            available = updated.available,
            "menu item updated"
        );
        Ok(Response::new(updated))
    }

    async fn price_items(
        &self,
        request: Request<pb::PriceItemsRequest>,
    ) -> Result<Response<pb::PriceItemsResponse>, Status> {
        let request = request.get_ref();
        let price_request = PriceRequest::from_request(request)?;
        let priced = self
            .catalog
            .read(|held| {
                let (restaurant, menu) = held.menu(price_request.restaurant_id)?;
                price_request.price(&restaurant.name, menu)
            })
            .await??;
        Ok(Response::new(priced))
    }
}
